//! What the images are built from (W2's inputs): the workspace files every
//! image needs, and what each Dockerfile copies.

use crate::project::Component;

/// A path an image is built from: a file (`Cargo.lock`) or a directory
/// (`broker/`, trailing slash), with the image names that depend on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInput {
    pub path: String,
    pub images: Vec<String>,
}

impl ImageInput {
    /// The filter pattern that covers it: `Cargo.lock`, `broker/**`.
    pub fn pattern(&self) -> String {
        match self.path.strip_suffix('/') {
            Some(d) => format!("{d}/**"),
            None => self.path.clone(),
        }
    }

    /// Sample files standing for the input when matching filters: the file,
    /// or for a directory a manifest, a source file and a nested file.
    pub fn probes(&self) -> Vec<String> {
        if !self.path.ends_with('/') {
            return vec![self.path.clone()];
        }
        let files = ["Cargo.toml", "src/main.rs", "a/b/c.txt"];
        files.iter().map(|f| format!("{}{f}", self.path)).collect()
    }
}

/// The sources of `COPY`/`ADD` lines of a Dockerfile (not `--from=` copies),
/// `./` prefixes removed, `.` for the whole build context.
pub fn dockerfile_sources(dockerfile: &str) -> Vec<String> {
    let joined = dockerfile.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let mut words = line.split_whitespace();
        let Some(instr) = words.next() else { continue };
        let rest: Vec<&str> = words.collect();
        let copy = instr.eq_ignore_ascii_case("COPY") || instr.eq_ignore_ascii_case("ADD");
        if !copy || rest.iter().any(|w| w.starts_with("--from=")) {
            continue;
        }
        let args: Vec<String> = if rest.iter().any(|w| w.starts_with('[')) {
            let json = rest.join(" ");
            let start = json.find('[').unwrap_or(0);
            serde_json::from_str(&json[start..]).unwrap_or_default()
        } else {
            let plain = rest.iter().filter(|w| !w.starts_with("--"));
            plain.map(|w| (*w).to_owned()).collect()
        };
        for src in args.iter().take(args.len().saturating_sub(1)) {
            let s = src.trim_start_matches("./");
            out.push(if s.is_empty() { ".".to_owned() } else { s.to_owned() });
        }
    }
    out
}

/// The workspace files every image is built from.
const COMMON_INPUTS: &[&str] =
    &["Cargo.toml", "Cargo.lock", ".cargo/", "rust-toolchain.toml", ".dockerignore", "docker/"];

/// Everything the images are built from, per component: [`COMMON_INPUTS`],
/// the component's Dockerfile, and what the Dockerfile copies: every workspace member for `COPY . .` (also assumed
/// when the Dockerfile text is not given), else each copied path. `members`
/// are directories relative to the root, as `cargo metadata` reports them.
pub fn image_inputs(
    members: &[String],
    dockerfiles: &[(&Component, Option<&str>)],
) -> Vec<ImageInput> {
    let mut inputs: Vec<ImageInput> = Vec::new();
    let mut add = |path: String, image: &str| match inputs.iter_mut().find(|i| i.path == path) {
        Some(i) if i.images.iter().any(|x| x == image) => {}
        Some(i) => i.images.push(image.to_owned()),
        None => inputs.push(ImageInput { path, images: vec![image.to_owned()] }),
    };
    let dir = |m: &str| format!("{}/", m.trim_end_matches('/'));
    for (c, text) in dockerfiles {
        let image = c.image_name();
        for p in COMMON_INPUTS.iter().copied().chain([c.dockerfile]) {
            add(p.to_owned(), &image);
        }
        for s in text.map_or_else(|| vec![".".to_owned()], dockerfile_sources) {
            if s == "." {
                members.iter().for_each(|m| add(dir(m), &image));
            } else if s.ends_with('/') || members.iter().any(|m| dir(m) == dir(&s)) {
                add(dir(&s), &image);
            } else {
                add(s, &image);
            }
        }
    }
    inputs
}

/// The path GitHub knows a workflow by: `.github/workflows/<file>` (a
/// fixture elsewhere stands for a workflow of that name).
pub fn repo_path(path: &str) -> String {
    let norm = path.replace('\\', "/");
    if let Some(pos) = norm.find(".github/workflows/") {
        return norm[pos..].to_owned();
    }
    let file = norm.rsplit('/').next().unwrap_or(&norm);
    format!(".github/workflows/{file}")
}
