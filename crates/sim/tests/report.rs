//! The report folder: every file written, deterministic, and readable back.

use cairn_sim::report::{nodes_csv, results_json, rounds_csv, NODES_CSV_HEADER, ROUNDS_CSV_HEADER};
use cairn_sim::result::VerificationRecord;
use cairn_sim::{
    summary_table, write_report, NodeRecord, NodeRole, RoundRecord, RunResult, Scenario,
};

/// A made-up run of the default scenario: 3 rounds, the second not finalized, one attacker slashed.
pub fn sample_result() -> RunResult {
    let scenario = Scenario::default();
    let rounds = (1..=3u32)
        .map(|round| RoundRecord {
            round,
            finalized: round != 2,
            accuracy: 0.5 + 0.1 * f64::from(round),
            loss: 1.0 / f64::from(round),
            model_hash: format!("{round:064x}"),
            finalization_latency_ms: (round != 2).then_some(1200 + u64::from(round)),
            rewards_paid: if round == 2 { 0 } else { 10_000 },
            slashed: if round == 3 { 500 } else { 0 },
            audited: u32::from(round == 3),
            disputes: u32::from(round == 3),
        })
        .collect();
    let mut nodes = Vec::new();
    for v in 0..4 {
        nodes.push(node(
            &format!("v{v}"),
            NodeRole::Validator,
            "honest",
            [400, 0, 400],
            0,
        ));
    }
    for t in 0..10 {
        let behaviour = if t < 8 { "honest" } else { "attack:alie" };
        let rewards = if t < 8 { [750, 0, 750] } else { [0, 0, 0] };
        let slashed = if t == 9 { 500 } else { 0 };
        nodes.push(node(
            &format!("t{t}"),
            NodeRole::Trainer,
            behaviour,
            rewards,
            slashed,
        ));
    }
    RunResult {
        scenario,
        final_accuracy: 0.8,
        final_loss: 0.3333,
        final_model_hash: format!("{:064x}", 3),
        final_state_root: "ab".repeat(32),
        simulated_ms: 9_876,
        rounds,
        nodes,
        centralized_accuracy: Some(0.85),
        verification: VerificationRecord {
            audit_ppm: 38_462,
            audited: 1,
            disputes: 1,
            challenger_won: 1,
            refereed: 1,
            referee_steps: 1,
            dispute_blocks: vec![11],
            witness_bytes: 610_000,
            ..VerificationRecord::default()
        },
    }
}

fn node(
    name: &str,
    role: NodeRole,
    behaviour: &str,
    rewards: [u128; 3],
    slashed: u128,
) -> NodeRecord {
    NodeRecord {
        name: name.to_owned(),
        role,
        behaviour: behaviour.to_owned(),
        address: "0".repeat(64),
        stake_initial: 1000,
        stake_final: 1000 - slashed,
        balance_final: rewards.iter().sum(),
        rewards_total: rewards.iter().sum(),
        slashed_total: slashed,
        forfeited_total: 0,
        revealed: 3,
        audited: u32::from(slashed > 0),
        disputes_won: 0,
        disputes_lost: u32::from(slashed > 0),
        rewards_per_round: rewards.to_vec(),
        work: Default::default(),
        costs: Default::default(),
    }
}

#[test]
fn report_writes_json_csv_toml_and_every_plot_as_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_report(&sample_result(), dir.path()).unwrap();
    let names: Vec<String> = files
        .all()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "results.json",
            "scenario.toml",
            "rounds.csv",
            "nodes.csv",
            "accuracy.png",
            "accuracy.svg",
            "rewards.png",
            "rewards.svg",
            "stake.png",
            "stake.svg"
        ]
    );
    for path in &files.plots {
        let bytes = std::fs::read(path).unwrap();
        if path.extension().unwrap() == "png" {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
        } else {
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                text.contains("<svg") && text.trim_end().ends_with("</svg>"),
                "{}",
                path.display()
            );
            // Titles and axis labels are drawn as text (the embedded font sized them).
            assert!(text.contains("<text"), "{}", path.display());
        }
    }
    let accuracy_svg = std::fs::read_to_string(dir.path().join("accuracy.svg")).unwrap();
    assert!(accuracy_svg.contains("Test accuracy per round"));
    assert!(accuracy_svg.contains("centralized training"));
    let rewards_svg = std::fs::read_to_string(dir.path().join("rewards.svg")).unwrap();
    assert!(rewards_svg.contains("honest trainer") && rewards_svg.contains("attacking trainer"));
}

/// Dark pixels in rows `rows` of an RGB PNG.
fn dark_pixels(path: &std::path::Path, rows: std::ops::Range<usize>) -> (usize, (u32, u32)) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let stride = info.line_size;
    let dark = rows
        .flat_map(|y| {
            buffer[y * stride..(y + 1) * stride]
                .chunks(3)
                .map(|p| p.to_vec())
                .collect::<Vec<_>>()
        })
        .filter(|p| p.iter().all(|&c| c < 96))
        .count();
    (dark, (info.width, info.height))
}

#[test]
fn png_plots_draw_their_titles_with_the_embedded_font() {
    let dir = tempfile::tempdir().unwrap();
    write_report(&sample_result(), dir.path()).unwrap();
    for plot in ["accuracy", "rewards", "stake"] {
        // The title sits in the top 50 rows, above the chart: only glyphs are dark there.
        let (dark, size) = dark_pixels(&dir.path().join(format!("{plot}.png")), 0..50);
        assert_eq!(size, (1024, 640));
        assert!(
            dark > 300,
            "{plot}.png: only {dark} dark pixels where the title should be"
        );
    }
}

#[test]
fn the_same_result_gives_byte_identical_report_files() {
    let result = sample_result();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let files_a = write_report(&result, a.path()).unwrap();
    write_report(&result, b.path()).unwrap();
    for path in files_a.all() {
        let name = path.file_name().unwrap();
        let left = std::fs::read(path).unwrap();
        let right = std::fs::read(b.path().join(name)).unwrap();
        assert!(
            left == right,
            "{} differs between two writes",
            name.to_string_lossy()
        );
    }
    assert_eq!(
        results_json(&result).unwrap(),
        results_json(&result.clone()).unwrap()
    );
}

#[test]
fn results_json_reads_back_with_amounts_as_exact_strings() {
    let mut result = sample_result();
    result.nodes[0].rewards_total = u128::MAX;
    result.rounds[0].loss = f64::NAN;
    let text = results_json(&result).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["nodes"][0]["rewards_total"], u128::MAX.to_string());
    assert_eq!(value["nodes"][4]["rewards_per_round"][0], "750");
    assert_eq!(
        value["rounds"][1]["finalization_latency_ms"],
        serde_json::Value::Null
    );
    assert_eq!(value["rounds"][0]["loss"], serde_json::Value::Null);
    assert_eq!(value["scenario"]["dataset"], "mnist_5k");
    let back: RunResult = serde_json::from_str(&text).unwrap();
    assert_eq!(back.nodes, result.nodes);
    assert!(back.rounds[0].loss.is_nan());
    assert_eq!(back.rounds[1..], result.rounds[1..]);
    assert_eq!(back.scenario, result.scenario);
}

#[test]
fn results_json_is_the_same_whatever_the_thread_count() {
    let one = sample_result();
    let mut four = sample_result();
    four.scenario.threads = 4;
    assert_eq!(results_json(&one).unwrap(), results_json(&four).unwrap());
    assert!(!results_json(&one).unwrap().contains("threads"));
}

#[test]
fn results_json_has_no_wall_clock_field() {
    let text = results_json(&sample_result()).unwrap();
    for word in ["wall", "elapsed", "timestamp", "date", "seconds"] {
        assert!(!text.contains(word), "results.json mentions `{word}`");
    }
}

#[test]
fn rounds_csv_has_the_documented_columns_and_one_row_per_round() {
    let csv = rounds_csv(&sample_result());
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], ROUNDS_CSV_HEADER);
    assert_eq!(lines.len(), 4);
    let columns = ROUNDS_CSV_HEADER.split(',').count();
    assert!(lines.iter().all(|l| l.split(',').count() == columns));
    assert_eq!(
        lines[1],
        format!("1,true,0.6,1,1201,10000,0,0,0,{:064x}", 1)
    );
    assert!(
        lines[2].starts_with("2,false,0.7,0.5,,0,0,0,0,"),
        "{}",
        lines[2]
    );
}

#[test]
fn nodes_csv_lists_every_node_with_its_economics() {
    let csv = nodes_csv(&sample_result());
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], NODES_CSV_HEADER);
    assert_eq!(lines.len(), 15);
    assert!(
        lines[14].starts_with("t9,trainer,attack:alie,"),
        "{}",
        lines[14]
    );
    assert!(
        lines[14].ends_with(",1000,500,0,0,500,0,3,1,0,1,0,0,0,0,0,0,0,0,-500"),
        "{}",
        lines[14]
    );
}

#[test]
fn scenario_toml_in_the_report_reruns_the_same_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_report(&sample_result(), dir.path()).unwrap();
    let scenario = Scenario::from_file(&files.scenario_toml).unwrap();
    assert_eq!(scenario, sample_result().scenario);
}

#[test]
fn summary_table_aligns_columns_and_ends_with_the_final_figures() {
    let table = summary_table(&sample_result());
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("node  role       behaviour"),
        "{}",
        lines[0]
    );
    let slashed_end = lines[0].len();
    // Amount columns are right-aligned: every node row ends where the header does.
    for line in &lines[2..16] {
        assert_eq!(line.len(), slashed_end, "{line:?}");
    }
    assert!(
        lines[15].starts_with("t9    trainer    attack:alie"),
        "{}",
        lines[15]
    );
    assert!(table.contains("rounds finalized     2/3"));
    assert!(table.contains("final accuracy       80.00%"));
    assert!(table.contains("centralized baseline 85.00%"));
    assert!(table.contains(&format!("final model (blake3) {:064x}", 3)));
    assert!(table.contains("simulated time       9.9 s"));
}

#[test]
fn a_report_into_an_unwritable_place_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("occupied");
    std::fs::write(&file, "not a folder").unwrap();
    let error = write_report(&sample_result(), &file).unwrap_err();
    assert!(error.to_string().contains("occupied"), "{error}");
}

#[test]
fn runs_with_one_node_or_none_still_plot() {
    for keep in [0, 1] {
        let mut result = sample_result();
        result.nodes.truncate(keep);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(write_report(&result, dir.path()).unwrap().plots.len(), 6);
    }
}

#[test]
fn empty_runs_still_plot() {
    let mut result = sample_result();
    result.rounds.clear();
    for node in &mut result.nodes {
        node.rewards_per_round.clear();
    }
    result.centralized_accuracy = None;
    let dir = tempfile::tempdir().unwrap();
    let files = write_report(&result, dir.path()).unwrap();
    assert_eq!(files.plots.len(), 6);
}

#[test]
#[ignore = "writes the sample report to $CAIRN_SIM_SAMPLE_OUT for a visual check"]
fn write_sample_report_for_inspection() {
    let out = std::env::var_os("CAIRN_SIM_SAMPLE_OUT").expect("set CAIRN_SIM_SAMPLE_OUT");
    write_report(&sample_result(), std::path::Path::new(&out)).unwrap();
}
