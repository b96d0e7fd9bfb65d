//! A case-sensitive APFS disk image for sysroots on macOS (`elfuse sysroot volume`).
//!
//! The image is a sparse bundle at `$XDG_DATA_HOME/elfuse/sysroots.sparsebundle`, formatted
//! "Case-sensitive APFS" and mounted on `$XDG_DATA_HOME/elfuse/sysroots`, the directory
//! `elfuse sysroot add` unpacks tarballs into. Running the command again after a restart
//! mounts the existing image. Both steps are `hdiutil`'s; elfuse only builds its command line.
//!
//! Limitations: the image is not mounted automatically at login; elsewhere than macOS this
//! only reports that it is not available. Only type-checked in CI (no macOS runner).

use std::path::PathBuf;

use thiserror::Error;

use super::config::Dirs;

/// Why the volume could not be made or mounted.
#[derive(Debug, Error)]
pub enum VolumeError {
    /// Not macOS.
    #[error(
        "'elfuse sysroot volume' is only for macOS; this file system is case-sensitive already"
    )]
    NotMacos,
    /// `hdiutil` could not be started.
    #[error("cannot run hdiutil: {0}")]
    Spawn(std::io::Error),
    /// `hdiutil` failed.
    #[error("hdiutil {step} failed ({status})")]
    Failed {
        /// `create` or `attach`.
        step: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// The mount point exists and is not empty.
    #[error("{}: not empty; move its sysroots away first", .0.display())]
    Busy(PathBuf),
}

/// What [`make_volume`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// The disk image.
    pub image: PathBuf,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Whether the image was created now (rather than only mounted).
    pub created: bool,
}

/// Creates (if needed) and mounts the case-sensitive sysroot volume of `size` (as `hdiutil`
/// reads sizes: `20g`, `500m`).
#[cfg(target_os = "macos")]
pub fn make_volume(dirs: &Dirs, size: &str) -> Result<Volume, VolumeError> {
    use std::process::Command;

    let image = dirs.data_dir.join("sysroots.sparsebundle");
    let mount_point = dirs.sysroots_dir();
    let occupied = std::fs::read_dir(&mount_point).is_ok_and(|mut d| d.next().is_some());
    if occupied {
        return Err(VolumeError::Busy(mount_point));
    }
    std::fs::create_dir_all(&mount_point).map_err(VolumeError::Spawn)?;

    let created = !image.exists();
    if created {
        let status = Command::new("hdiutil")
            .args([
                "create",
                "-type",
                "SPARSEBUNDLE",
                "-fs",
                "Case-sensitive APFS",
            ])
            .args(["-volname", "elfuse-sysroots", "-size", size])
            .arg(&image)
            .status()
            .map_err(VolumeError::Spawn)?;
        if !status.success() {
            return Err(VolumeError::Failed {
                step: "create",
                status,
            });
        }
    }

    let status = Command::new("hdiutil")
        .args(["attach", "-nobrowse", "-mountpoint"])
        .arg(&mount_point)
        .arg(&image)
        .status()
        .map_err(VolumeError::Spawn)?;
    if !status.success() {
        return Err(VolumeError::Failed {
            step: "attach",
            status,
        });
    }
    Ok(Volume {
        image,
        mount_point,
        created,
    })
}

/// Reports that the volume is a macOS feature.
#[cfg(not(target_os = "macos"))]
pub fn make_volume(_dirs: &Dirs, _size: &str) -> Result<Volume, VolumeError> {
    Err(VolumeError::NotMacos)
}
