//! `cairn aggregate` and `cairn attack` end to end: the binary reads .npy files written here (and,
//! when Python with numpy is available, by numpy), and writes what the library computes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cairn_ml::npy::{self, NpyArray};
use cairn_robust::attack::{craft, Attack, Setting};
use cairn_robust::{aggregate, Context, PreAggregation, Rule, Updates};

fn cairn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .output()
        .expect("run the cairn binary")
}

fn succeed(args: &[&str]) -> String {
    let output = cairn(args);
    assert!(
        output.status.success(),
        "cairn {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn fail(args: &[&str]) -> String {
    let output = cairn(args);
    assert!(!output.status.success(), "cairn {args:?} should fail");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Seven updates of dimension 3, the last one an outlier.
fn updates() -> (Vec<f32>, usize, usize) {
    let data = vec![
        1.0, 2.0, 3.0, //
        1.1, 2.1, 2.9, //
        0.9, 1.9, 3.1, //
        1.2, 2.2, 3.0, //
        0.8, 1.8, 2.8, //
        1.0, 2.3, 3.2, //
        100.0, -100.0, 50.0,
    ];
    (data, 7, 3)
}

fn write_updates(dir: &Path) -> PathBuf {
    let (data, n, d) = updates();
    let path = dir.join("updates.npy");
    npy::write(&path, &NpyArray::matrix(n, d, data).unwrap()).unwrap();
    path
}

fn read_vector(path: &Path) -> Vec<f32> {
    let array = npy::read(path).unwrap();
    assert_eq!(array.shape.len(), 1, "output must be 1-D");
    array.data
}

#[test]
fn aggregate_median_writes_the_coordinate_wise_median() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_updates(dir.path());
    let output = dir.path().join("median.npy");
    let stdout = succeed(&[
        "aggregate",
        "--rule",
        "median",
        "--input",
        path_str(&input),
        "--output",
        path_str(&output),
    ]);
    assert!(stdout.contains("median"), "{stdout}");
    assert_eq!(read_vector(&output), vec![1.0, 2.0, 3.0]);
}

#[test]
fn aggregate_matches_the_library_bit_for_bit_for_every_rule_and_chain() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_updates(dir.path());
    let (data, n, d) = updates();
    let view = Updates::new(&data, n, d).unwrap();
    let cases: &[&[&str]] = &[
        &["--rule", "krum", "--f", "2"],
        &["--rule", "krum", "--f", "2", "--variant", "byzfl"],
        &["--rule", "multi_krum", "--f", "1", "--m", "3"],
        &["--rule", "trimmed_mean", "--f", "1", "--pre", "nnm"],
        &[
            "--rule",
            "geometric_median",
            "--nu",
            "1e-6",
            "--iterations",
            "100",
            "--init",
            "median",
        ],
        &[
            "--rule",
            "centered_clipping",
            "--tau",
            "1.0",
            "--iterations",
            "5",
            "--pre",
            "clip:10",
        ],
        &[
            "--rule",
            "meamed",
            "--f",
            "1",
            "--pre",
            "bucketing:2:9,arc:1",
        ],
        &["--rule", "monna:1", "--reference", "2"],
        &["--rule", "bulyan:1"],
    ];
    for (k, extra) in cases.iter().enumerate() {
        let output = dir.path().join(format!("out{k}.npy"));
        let mut args = vec![
            "aggregate",
            "--input",
            path_str(&input),
            "--output",
            path_str(&output),
        ];
        args.extend_from_slice(extra);
        succeed(&args);
        let expected = library_aggregate(extra, &view);
        assert_eq!(read_vector(&output), expected, "{extra:?}");
    }
}

/// What the library gives for the same flags (parsed the way the command documents them).
fn library_aggregate(flags: &[&str], updates: &Updates<'_>) -> Vec<f32> {
    let value = |flag: &str| flags.iter().position(|f| *f == flag).map(|i| flags[i + 1]);
    let f: usize = value("--f").map_or(0, |v| v.parse().unwrap());
    let mut rule = Rule::parse(value("--rule").unwrap(), f).unwrap();
    match &mut rule {
        Rule::Krum { variant, .. } if value("--variant") == Some("byzfl") => {
            *variant = cairn_robust::KrumVariant::ByzFl
        }
        Rule::MultiKrum { m, .. } => *m = value("--m").map(|v| v.parse().unwrap()),
        Rule::GeometricMedian {
            nu,
            iterations,
            init,
        } => {
            *nu = value("--nu").unwrap().parse().unwrap();
            *iterations = value("--iterations").unwrap().parse().unwrap();
            *init = cairn_robust::GmInit::Median;
        }
        Rule::CenteredClipping { tau, iterations } => {
            *tau = value("--tau").unwrap().parse().unwrap();
            *iterations = value("--iterations").unwrap().parse().unwrap();
        }
        Rule::Monna { reference, .. } => {
            *reference = value("--reference").unwrap().parse().unwrap()
        }
        _ => {}
    }
    let pre = PreAggregation::parse_chain(value("--pre").unwrap_or(""), f).unwrap();
    aggregate(&rule, &pre, updates, &Context::default()).unwrap()
}

#[test]
fn aggregate_centered_clipping_starts_from_the_previous_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_updates(dir.path());
    let previous = dir.path().join("previous.npy");
    npy::write(&previous, &NpyArray::vector(vec![1.0, 2.0, 3.0])).unwrap();
    let output = dir.path().join("cc.npy");
    succeed(&[
        "aggregate",
        "--rule",
        "centered_clipping",
        "--tau",
        "0.5",
        "--iterations",
        "1",
        "--previous",
        path_str(&previous),
        "--input",
        path_str(&input),
        "--output",
        path_str(&output),
    ]);
    let (data, n, d) = updates();
    let expected = aggregate(
        &Rule::CenteredClipping {
            tau: 0.5,
            iterations: 1,
        },
        &[],
        &Updates::new(&data, n, d).unwrap(),
        &Context {
            previous: Some(&[1.0, 2.0, 3.0]),
            ..Context::default()
        },
    )
    .unwrap();
    let got = read_vector(&output);
    assert_eq!(got, expected);
    // One step from the previous aggregate moves it by at most tau.
    let step: f32 = got
        .iter()
        .zip([1.0, 2.0, 3.0])
        .map(|(a, b)| (a - b).powi(2))
        .sum();
    assert!(step.sqrt() <= 0.5 + 1e-6);
}

#[test]
fn aggregate_reports_bad_inputs_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_updates(dir.path());
    let out = dir.path().join("out.npy");
    let vector = dir.path().join("vector.npy");
    npy::write(&vector, &NpyArray::vector(vec![1.0, 2.0])).unwrap();
    let garbage = dir.path().join("garbage.npy");
    std::fs::write(&garbage, b"not numpy").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--rule", "nope"], "unknown rule"),
        (vec!["--rule", "median", "--tau", "1"], "--tau"),
        (vec!["--rule", "bulyan", "--f", "2"], "n >= 4f + 3"),
        (vec!["--rule", "median", "--non-finite", "ignore"], "reject"),
        (
            vec!["--rule", "median", "--pre", "bucketing"],
            "bucket size",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec![
            "aggregate",
            "--input",
            path_str(&input),
            "--output",
            path_str(&out),
        ];
        args.extend(extra.iter().copied());
        let stderr = fail(&args);
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
    }
    let stderr = fail(&[
        "aggregate",
        "--input",
        path_str(&vector),
        "--output",
        path_str(&out),
    ]);
    assert!(stderr.contains("2-D"), "{stderr}");
    let stderr = fail(&[
        "aggregate",
        "--input",
        path_str(&garbage),
        "--output",
        path_str(&out),
    ]);
    assert!(stderr.contains("not a .npy file"), "{stderr}");
    let missing = dir.path().join("missing.npy");
    let stderr = fail(&[
        "aggregate",
        "--input",
        path_str(&missing),
        "--output",
        path_str(&out),
    ]);
    assert!(stderr.contains("missing.npy"), "{stderr}");
    assert!(!out.exists(), "no output is written on failure");
}

#[test]
fn attack_writes_f_rows_equal_to_the_library_output() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, d) = updates();
    let honest = &data[..6 * d];
    let input = dir.path().join("honest.npy");
    npy::write(&input, &NpyArray::matrix(6, d, honest.to_vec()).unwrap()).unwrap();
    for (kind, rule) in [
        ("alie", "median"),
        ("optimized_ipm", "trimmed_mean"),
        ("gaussian:2", "median"),
    ] {
        let output = dir.path().join("byzantine.npy");
        succeed(&[
            "attack",
            "--kind",
            kind,
            "--f",
            "2",
            "--rule",
            rule,
            "--seed",
            "5",
            "--input",
            path_str(&input),
            "--output",
            path_str(&output),
        ]);
        let array = npy::read(&output).unwrap();
        assert_eq!(array.shape, vec![2, d], "{kind}");
        let mut setting = Setting::new(8, 2, Rule::parse(rule, 2).unwrap());
        setting.seed = 5;
        let expected = craft(&kind.parse::<Attack>().unwrap(), honest, d, &setting).unwrap();
        assert_eq!(array.data, expected, "{kind}");
    }
    let stale = dir.path().join("stale.npy");
    npy::write(&stale, &NpyArray::vector(vec![7.0, 8.0, 9.0])).unwrap();
    let output = dir.path().join("stale_out.npy");
    succeed(&[
        "attack",
        "--kind",
        "stale",
        "--f",
        "3",
        "--stale",
        path_str(&stale),
        "--input",
        path_str(&input),
        "--output",
        path_str(&output),
    ]);
    assert_eq!(npy::read(&output).unwrap().data, [7.0, 8.0, 9.0].repeat(3));
    let stderr = fail(&[
        "attack",
        "--kind",
        "stale",
        "--f",
        "1",
        "--input",
        path_str(&input),
        "--output",
        path_str(&output),
    ]);
    assert!(stderr.contains("--stale"), "{stderr}");
    let stderr = fail(&[
        "attack",
        "--kind",
        "alie",
        "--f",
        "2",
        "--n",
        "7",
        "--input",
        path_str(&input),
        "--output",
        path_str(&output),
    ]);
    assert!(stderr.contains("at most 5"), "{stderr}");
}

#[test]
fn help_documents_every_option_with_an_example() {
    let aggregate_help = succeed(&["aggregate", "--help"]);
    for needle in [
        "--input",
        "--output",
        "--rule",
        "--f",
        "--pre",
        "--m",
        "--variant",
        "--tau",
        "--nu",
        "--iterations",
        "--init",
        "--reference",
        "--previous",
        "--non-finite",
        "Example",
        "[default: median]",
        "np.load",
    ] {
        assert!(
            aggregate_help.contains(needle),
            "aggregate --help lacks {needle}"
        );
    }
    let attack_help = succeed(&["attack", "--help"]);
    for needle in [
        "--input", "--output", "--kind", "--f", "--n", "--rule", "--pre", "--seed", "--stale",
        "Example", "min_max", "sybil",
    ] {
        assert!(attack_help.contains(needle), "attack --help lacks {needle}");
    }
}

/// Python with numpy, if this machine has it (`CAIRN_PYTHON` or `python3`).
fn python_with_numpy() -> Option<String> {
    let python = std::env::var("CAIRN_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then_some(python)
}

#[test]
fn numpy_reads_and_writes_files_the_cli_understands() {
    let Some(python) = python_with_numpy() else {
        eprintln!("skipped: no python3 with numpy (set CAIRN_PYTHON to one)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("from_numpy.npy");
    let honest = dir.path().join("honest.npy");
    let output = dir.path().join("aggregate.npy");
    let byzantine = dir.path().join("byzantine.npy");
    // numpy writes float64 (its default) for the updates and float32 for the honest ones.
    let script = format!(
        "import numpy as np\n\
         x = np.random.default_rng(3).normal(size=(9, 40))\n\
         np.save({input:?}, x)\n\
         np.save({honest:?}, x[:7].astype(np.float32))\n",
        input = path_str(&input),
        honest = path_str(&honest)
    );
    let status = Command::new(&python)
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(status.success());
    succeed(&[
        "aggregate",
        "--rule",
        "trimmed_mean:2",
        "--input",
        path_str(&input),
        "--output",
        path_str(&output),
    ]);
    succeed(&[
        "attack",
        "--kind",
        "sign_flip",
        "--f",
        "2",
        "--input",
        path_str(&honest),
        "--output",
        path_str(&byzantine),
    ]);
    let check = format!(
        "import numpy as np\n\
         x = np.load({input:?}).astype(np.float32).astype(np.float64)\n\
         out = np.load({output:?})\n\
         assert out.dtype == np.float32 and out.shape == (40,), (out.dtype, out.shape)\n\
         expected = np.sort(x, axis=0)[2:-2].mean(axis=0)\n\
         assert np.allclose(out, expected, rtol=1e-5, atol=1e-6), np.abs(out - expected).max()\n\
         h = np.load({honest:?}).astype(np.float64)\n\
         b = np.load({byzantine:?})\n\
         assert b.dtype == np.float32 and b.shape == (2, 40), (b.dtype, b.shape)\n\
         assert np.allclose(b, -h.mean(axis=0), rtol=1e-6, atol=1e-7)\n\
         print('numpy agrees')\n",
        input = path_str(&input),
        output = path_str(&output),
        honest = path_str(&honest),
        byzantine = path_str(&byzantine)
    );
    let result = Command::new(&python).args(["-c", &check]).output().unwrap();
    assert!(
        result.status.success(),
        "numpy check failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(String::from_utf8_lossy(&result.stdout).contains("numpy agrees"));
}
