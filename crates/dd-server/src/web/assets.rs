//! The stylesheet and script, embedded in the binary and served with a content hash in their URL.
//!
//! The hash makes the URL change with the content, so browsers may cache the files for a year
//! without ever running an old script against a new page.

/// One embedded file.
pub(crate) struct Asset {
    /// The file name under `/static/`.
    pub(crate) name: &'static str,
    /// `Content-Type`.
    pub(crate) content_type: &'static str,
    /// The file.
    pub(crate) body: &'static str,
}

/// The stylesheet.
pub(crate) const STYLE: Asset =
    Asset { name: "style.css", content_type: "text/css; charset=utf-8", body: include_str!("assets/style.css") };

/// The page script.
pub(crate) const SCRIPT: Asset =
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", body: include_str!("assets/app.js") };

impl Asset {
    /// `/static/{name}?v={hash}`.
    pub(crate) fn href(&self) -> String {
        format!("/static/{}?v={:016x}", self.name, fnv1a(self.body.as_bytes()))
    }
}

/// The asset named `name`, if any.
pub(crate) fn find(name: &str) -> Option<&'static Asset> {
    [&STYLE, &SCRIPT].into_iter().find(|asset| asset.name == name)
}

/// FNV-1a: a content fingerprint, not a security hash.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}
