//! Client configuration files, rendered: a dnf `.repo` file and a deb822
//! `.sources` file (key inline as `Signed-By`). Pure: what the repository
//! is and where it is served in, text out; `ops::client_config` gathers the
//! inputs.

/// A dnf repository definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnfRepo<'a> {
    pub name: &'a str,
    /// The repository's base URL (ends with `/`).
    pub url: &'a str,
    /// URLs of every key that signs what the repository serves.
    pub keys: Vec<String>,
    /// Whether every package is signed (`gpgcheck`).
    pub packages_signed: bool,
    /// Whether the metadata is signed (`repo_gpgcheck`).
    pub metadata_signed: bool,
}

/// The `.repo` text.
pub fn dnf_repo(r: &DnfRepo<'_>) -> String {
    let name = r.name;
    let mut s = format!(
        "[{name}]\nname={name}\nbaseurl={}\nenabled=1\ngpgcheck={}\nrepo_gpgcheck={}\nmetadata_expire=60\nskip_if_unavailable=0\n",
        r.url,
        u8::from(r.packages_signed),
        u8::from(r.metadata_signed)
    );
    if !r.keys.is_empty() {
        s.push_str(&format!("gpgkey={}\n", r.keys.join(" ")));
    }
    s
}

/// An APT source in deb822 form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource<'a> {
    pub url: &'a str,
    pub codename: &'a str,
    pub component: &'a str,
    /// The repository's architectures (`all` is left out: apt adds it).
    pub architectures: &'a [String],
    /// Whether source packages are published (`deb-src`).
    pub sources: bool,
    /// The armored public key that signs the repository.
    pub key: Option<&'a [u8]>,
}

/// The `.sources` text.
pub fn apt_sources(a: &AptSource<'_>) -> String {
    let types = if a.sources { "deb deb-src" } else { "deb" };
    let mut s = format!(
        "Types: {types}\nURIs: {}\nSuites: {}\nComponents: {}\nArchitectures: {}\n",
        a.url,
        a.codename,
        a.component,
        a.architectures
            .iter()
            .filter(|x| *x != "all")
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let Some(armored) = a.key {
        s.push_str("Signed-By:\n");
        for line in String::from_utf8_lossy(armored).lines() {
            if line.trim().is_empty() {
                s.push_str(" .\n");
            } else {
                s.push(' ');
                s.push_str(line);
                s.push('\n');
            }
        }
    }
    s
}
