//! Peak resident memory of this process over a window of work (Linux only).
//!
//! [`PeakWindow::start`] resets the kernel's high-water mark of the process's resident set
//! (`echo 5 > /proc/self/clear_refs`, Linux 4.0 and later) and [`PeakWindow::peak_bytes`]
//! reads it back (`VmHWM` in `/proc/self/status`). The figure is the largest resident set
//! of the whole process during the window: everything it already held (the dataset, the
//! pages of memory-mapped feature caches it touched, memory the allocator kept from earlier
//! work) plus what the window added. It is host memory only: a GPU backend's device memory
//! is not in it. The reset is process-wide, so two windows must not overlap. Where the reset
//! or the read is impossible (another system, a kernel or sandbox that refuses it) the
//! figure is `None`, never a peak since the process started.

/// A window whose peak resident memory can be read.
#[derive(Debug)]
pub(crate) struct PeakWindow {
    reset: bool,
}

impl PeakWindow {
    /// Resets the process's peak and starts the window.
    pub fn start() -> Self {
        Self {
            reset: std::fs::write("/proc/self/clear_refs", b"5").is_ok(),
        }
    }

    /// The peak resident memory since [`start`](Self::start), in bytes.
    pub fn peak_bytes(&self) -> Option<u64> {
        if !self.reset {
            return None;
        }
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        vm_hwm_bytes(&status)
    }
}

/// `VmHWM` of a `/proc/<pid>/status` text, in bytes.
fn vm_hwm_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut fields = line["VmHWM:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => Some(value * 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_water_mark_is_read_in_bytes() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(vm_hwm_bytes(status), Some(1234 * 1024));
        assert_eq!(vm_hwm_bytes("VmHWM: 12 MB\n"), None);
        assert_eq!(vm_hwm_bytes("Name: x\n"), None);
    }

    #[test]
    fn a_window_sees_what_it_allocates() {
        let window = PeakWindow::start();
        if window.peak_bytes().is_none() {
            eprintln!("skipped: no resettable peak memory on this system");
            return;
        }
        // Written, so resident (other tests of this process may reset the peak meanwhile,
        // but the block stays resident while it is held).
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        let peak = window.peak_bytes().unwrap();
        assert!(peak >= 64 << 20, "{peak}");
    }
}
