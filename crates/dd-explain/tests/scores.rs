//! The scores against an independent Python implementation of OpenAI's definitions, on fixed
//! inputs (`scripts/make_explanation_score_fixture.py` wrote the fixture).

use dd_explain::score::{Scores, Simulated};
use serde_json::Value;

fn sequences(value: &Value) -> Vec<Simulated> {
    let numbers =
        |v: &Value| -> Vec<f64> { v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect() };
    value
        .as_array()
        .expect("sequences")
        .iter()
        .map(|s| Simulated {
            expected: numbers(&s["expected"]),
            true_values: numbers(&s["true"]),
            random: s["random"].as_bool().expect("bool"),
        })
        .collect()
}

fn assert_close(name: &str, ours: Option<f64>, reference: &Value) {
    match (ours, reference.as_f64()) {
        (None, None) => {}
        (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{name}: {a} vs {b}"),
        (a, b) => panic!("{name}: {a:?} vs {b:?}"),
    }
}

#[test]
fn scores_match_the_python_reference() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/scores.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    let cases = fixture["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let scores = Scores::compute(&sequences(&case["calibration"]), &sequences(&case["scored"]));
        assert_close(&format!("{name} slope"), Some(scores.calibration.slope), &case["slope"]);
        assert_close(&format!("{name} intercept"), Some(scores.calibration.intercept), &case["intercept"]);
        assert_close(&format!("{name} ev"), scores.ev_correlation, &case["ev_correlation_score"]);
        assert_close(&format!("{name} r2"), scores.rsquared, &case["rsquared_score"]);
        assert_close(&format!("{name} abs"), scores.absolute_dev_explained, &case["absolute_dev_explained_score"]);
        assert_close(&format!("{name} top"), scores.ev_correlation_top, &case["ev_correlation_score_top"]);
        assert_close(&format!("{name} random"), scores.ev_correlation_random, &case["ev_correlation_score_random"]);
    }
}
