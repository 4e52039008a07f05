//! Root-only tests: one place that decides whether such a test runs, skips or fails.
//!
//! Namespace tests need root (CAP_NET_ADMIN). On a developer's machine they skip with
//! a message; under CI, which sets `VXDP_REQUIRE_ROOT=1`, a root test that would skip
//! fails instead, so a runner that lost its privileges cannot pass by skipping.

/// The environment variable that turns a skipped root test into a failure.
pub const REQUIRE_ROOT_ENV: &str = "VXDP_REQUIRE_ROOT";

/// What a root-only test does, given who runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootDecision {
    /// Running as root: the test runs.
    Run,
    /// Not root: the test returns early, after saying so.
    Skip,
    /// Not root, but `VXDP_REQUIRE_ROOT=1`: the test fails.
    Fail,
}

/// The decision for effective uid `euid` and the value of `VXDP_REQUIRE_ROOT` (`None`
/// when unset). Only the exact value `1` makes a skip fail.
pub fn root_decision(euid: u32, require_root_env: Option<&str>) -> RootDecision {
    match (euid, require_root_env) {
        (0, _) => RootDecision::Run,
        (_, Some("1")) => RootDecision::Fail,
        _ => RootDecision::Skip,
    }
}

/// True when running as root. Otherwise prints `skipping TEST: needs root ...` and
/// returns false (the test then returns early), or, with `VXDP_REQUIRE_ROOT=1`, panics
/// naming the test.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let env = std::env::var(REQUIRE_ROOT_ENV).ok();
    match root_decision(euid, env.as_deref()) {
        RootDecision::Run => true,
        RootDecision::Skip => {
            eprintln!("skipping {test}: needs root (CAP_NET_ADMIN, for network namespaces)");
            false
        }
        RootDecision::Fail => panic!(
            "{test} needs root (CAP_NET_ADMIN, for network namespaces) but runs as uid {euid}, \
             and {REQUIRE_ROOT_ENV}=1 forbids skipping it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_runs_whatever_the_environment_says() {
        for env in [None, Some("1"), Some("0"), Some("")] {
            assert_eq!(root_decision(0, env), RootDecision::Run, "{env:?}");
        }
    }

    #[test]
    fn non_root_skips_unless_ci_requires_root() {
        assert_eq!(root_decision(1000, None), RootDecision::Skip);
        assert_eq!(root_decision(1000, Some("0")), RootDecision::Skip);
        assert_eq!(root_decision(1000, Some("")), RootDecision::Skip);
        assert_eq!(root_decision(1000, Some("yes")), RootDecision::Skip);
        assert_eq!(root_decision(1000, Some("1")), RootDecision::Fail);
        assert_eq!(root_decision(65534, Some("1")), RootDecision::Fail);
    }

    #[test]
    fn require_root_agrees_with_the_decision() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        let env = std::env::var(REQUIRE_ROOT_ENV).ok();
        match root_decision(euid, env.as_deref()) {
            RootDecision::Run => assert!(require_root("this test")),
            RootDecision::Skip => assert!(!require_root("this test")),
            RootDecision::Fail => {
                let msg = std::panic::catch_unwind(|| require_root("this test")).unwrap_err();
                let msg = msg.downcast_ref::<String>().expect("a formatted panic message");
                assert!(msg.contains("this test") && msg.contains("VXDP_REQUIRE_ROOT=1"), "{msg}");
            }
        }
    }
}
