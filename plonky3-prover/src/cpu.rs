//! Run-time CPU check.
//!
//! `.cargo/config.toml` compiles the workspace with `-C target-feature=+avx2,+bmi2,+adx`, which
//! makes Plonky3's KoalaBear arithmetic 5-10x faster. Such a binary dies with `SIGILL` on a CPU
//! without these instructions, so binaries call [`check_cpu`] first (and [`Prover::new`](crate::Prover::new)
//! calls it too). The check reads `cpuid` directly: `is_x86_feature_detected!` would be answered
//! at compile time once the feature is enabled there.

use crate::error::{Error, Result};

/// Returns [`Error::UnsupportedCpu`] if this x86-64 binary was compiled for AVX2/BMI2/ADX and the
/// CPU (or OS, for AVX2 register state) lacks one of them. Always `Ok` on other architectures.
pub fn check_cpu() -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(missing) = x86::missing_feature() {
            return Err(Error::UnsupportedCpu { missing });
        }
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};

    #[target_feature(enable = "xsave")]
    unsafe fn xcr0() -> u64 {
        // SAFETY: the caller checked OSXSAVE, so `xgetbv` exists.
        unsafe { _xgetbv(0) }
    }

    /// The first compiled-in feature the CPU lacks, if any.
    pub(super) fn missing_feature() -> Option<&'static str> {
        // SAFETY: `cpuid` exists on every x86-64 CPU; `xgetbv` is called only when `cpuid`
        // reports OSXSAVE, which implies XSAVE support.
        #[allow(unused_unsafe)]
        unsafe {
            let max_leaf = __cpuid(0).eax;
            let leaf1 = __cpuid(1);
            let osxsave = leaf1.ecx & (1 << 27) != 0;
            let ymm_enabled = osxsave && (xcr0() & 0b110) == 0b110;
            let leaf7_ebx = if max_leaf >= 7 { __cpuid_count(7, 0).ebx } else { 0 };
            let has_avx2 = ymm_enabled && leaf7_ebx & (1 << 5) != 0;
            let has_bmi2 = leaf7_ebx & (1 << 8) != 0;
            let has_adx = leaf7_ebx & (1 << 19) != 0;
            if cfg!(target_feature = "avx2") && !has_avx2 {
                return Some("avx2");
            }
            if cfg!(target_feature = "bmi2") && !has_bmi2 {
                return Some("bmi2");
            }
            if cfg!(target_feature = "adx") && !has_adx {
                return Some("adx");
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_machine_passes() {
        // The test binary itself runs with the configured features, so the check must pass here.
        super::check_cpu().unwrap();
    }
}
