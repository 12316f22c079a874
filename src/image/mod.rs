//! Images: references, the content-addressed store, layer unpacking, archives and the
//! per-container overlay rootfs. Image work runs in the CLI process, never in a monitor.

pub mod archive;
pub mod compress;
pub mod digest;
pub mod progress;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod rootfs;
pub mod store;
pub mod unpack;

/// What the image operations report.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] store::ImageStoreError),
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
    #[error(transparent)]
    Rootfs(#[from] rootfs::RootfsError),
    /// `run` of an image that is not in the store (no registry yet).
    #[error("Unable to find image '{0}' locally")]
    NotFound(String),
    #[error("pulling {reference}: {source}")]
    Pull {
        reference: String,
        source: pull::PullError,
    },
    #[error(transparent)]
    ConfigFile(#[from] registry::auth::ConfigFileError),
    /// `login` refused by the registry.
    #[error("login to {host}: {source}")]
    Login {
        host: String,
        source: registry::RegistryError,
    },
    #[error("{0}")]
    Platform(pull::PullError),
    #[error("invalid reference {0:?}: {1}")]
    BadReference(String, String),
    #[error("image config {0}: {1}")]
    Config(String, String),
    #[error("conflict: unable to remove repository reference \"{reference}\" (must force) - container {container} is using its referenced image {image}")]
    InUse {
        reference: String,
        container: String,
        image: String,
    },
    #[error("conflict: unable to delete {0} (must be forced) - image is referenced in multiple repositories")]
    ManyNames(String),
}
