//! `deepdecipher export` as a user runs it: both formats from the file name or `--format`, kinds
//! and layers narrowed, clear errors that leave no file behind.

use std::path::Path;

use dd_export::{ExportRow, RowLevel, read_file};

use crate::server::run;

fn synth(dir: &Path) -> String {
    let database = dir.join("data.db").to_str().expect("utf-8").to_owned();
    let (code, _, stderr) = run(&["synth", &database, "--name", "tiny", "--layers", "2", "--neurons", "4"]);
    assert_eq!(code, 0, "{stderr}");
    database
}

fn rows(path: &Path) -> Vec<ExportRow> {
    let mut rows = Vec::new();
    read_file(path, &mut |row| {
        rows.push(row);
        Ok(())
    })
    .expect("read export");
    rows
}

#[test]
fn export_writes_both_formats_and_narrows_by_kind_and_layer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = synth(dir.path());
    let parquet = dir.path().join("tiny.parquet");
    let (code, stdout, stderr) = run(&["export", &database, "-o", parquet.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("as parquet"), "{stdout}");
    let all = rows(&parquet);
    assert_eq!((all[0].level, all[0].kind.as_str()), (RowLevel::Model, "metadata"));
    assert!(all.iter().any(|row| row.kind == "examples" && row.layer == Some(1) && row.index == Some(3)));

    let jsonl = dir.path().join("narrow.out");
    let args = ["export", &database, "--model", "tiny", "--format", "jsonl.gz", "--kinds", "stats", "--layers", "0"];
    let (code, _, stderr) = run(&[&args[..], &["-o", jsonl.to_str().expect("utf-8")]].concat());
    assert_eq!(code, 0, "{stderr}");
    let narrow: Vec<(RowLevel, String, Option<u32>, Option<u32>)> =
        rows(&jsonl).into_iter().map(|row| (row.level, row.kind, row.layer, row.index)).collect();
    let mut expected = vec![(RowLevel::Model, "metadata".to_owned(), None, None)];
    expected.extend((0..4).map(|index| (RowLevel::Neuron, "stats".to_owned(), Some(0), Some(index))));
    assert_eq!(narrow, expected);
}

#[test]
fn bad_export_arguments_fail_clearly_and_leave_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = synth(dir.path());
    let out = dir.path().join("out.parquet");
    let out = out.to_str().expect("utf-8");
    for (args, message) in [
        (vec!["--kinds", "examples,bogus"], "unknown kind \"bogus\""),
        (vec!["--format", "csv"], "unknown export format \"csv\""),
        (vec!["--model", "absent"], "absent"),
    ] {
        let (code, _, stderr) = run(&[&["export", database.as_str(), "-o", out][..], &args[..]].concat());
        assert_ne!(code, 0, "{args:?}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let unnamed = dir.path().join("out.bin");
    let (code, _, stderr) = run(&["export", &database, "-o", unnamed.to_str().expect("utf-8")]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--format"), "{stderr}");
    let left: Vec<_> =
        std::fs::read_dir(dir.path()).expect("list").map(|entry| entry.expect("entry").file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("data.db")], "files left behind");
}
