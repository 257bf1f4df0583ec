//! `--help` on the command and every subcommand (each with an example), and bad usage
//! exiting with code 2 and a message naming the argument.

mod common;

use common::{segloss, text};

#[test]
fn every_subcommand_has_help_with_an_example() {
    for args in [
        &["--help"][..],
        &["evaluate", "--help"],
        &["doctor", "--help"],
        &["bench", "--help"],
        &["help", "doctor"],
    ] {
        let out = segloss(args);
        let t = text(&out);
        assert!(out.status.success(), "{args:?}: {t}");
        assert!(t.contains("Usage: segloss"), "{args:?}: {t}");
        assert!(t.contains("Example"), "{args:?} shows no example: {t}");
    }
    let t = text(&segloss(&["evaluate", "--help"]));
    for flag in [
        "--pred",
        "--target",
        "--classes",
        "--ignore-index",
        "--worst",
        "--json",
        "--backend",
        "--adapter",
    ] {
        assert!(t.contains(flag), "evaluate --help lacks {flag}: {t}");
    }
    let t = text(&segloss(&["--version"]));
    assert!(t.contains("segloss "), "{t}");
}

#[test]
fn bad_usage_exits_with_2_and_names_the_argument() {
    for (args, want) in [
        (
            &["evaluate", "--target", "t", "--classes", "3"][..],
            "--pred",
        ),
        (
            &[
                "evaluate",
                "--pred",
                "p",
                "--target",
                "t",
                "--classes",
                "three",
            ],
            "three",
        ),
        (&["doctor", "--backend", "glide"], "glide"),
        (&["bench", "--shapes", "1x3x7"], "multiple of 4"),
        (&["bench", "--runs", "0"], "--runs"),
        (&["frobnicate"], "frobnicate"),
    ] {
        let out = segloss(args);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(
            t.contains(want),
            "{args:?}: {t:?} does not mention {want:?}"
        );
    }
}
