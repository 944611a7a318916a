//! The state machine reference (`docs/state-machine.md`) carries diagrams and edge tables
//! generated from the engine's own transition table. This test fails when they are stale;
//! `TANDEM_BLESS=1 cargo test -p tandem-engine --test docs` rewrites them.

use std::path::PathBuf;
use tandem_engine::Topology;
use tandem_engine::transitions::{edges, mermaid};

fn generated(topology: Topology) -> String {
    let mut out = String::new();
    out.push_str("```mermaid\n");
    out.push_str(&mermaid(topology));
    out.push_str("```\n\n| from | to | reason |\n|---|---|---|\n");
    for edge in edges(topology) {
        out.push_str(&format!(
            "| `{}` | `{}` | `{:?}` |\n",
            edge.from.name(),
            edge.to.name(),
            edge.reason
        ));
    }
    out
}

fn markers(topology: Topology) -> (String, String) {
    let name = topology.name();
    (
        format!("<!-- generated:{name}:begin -->\n"),
        format!("<!-- generated:{name}:end -->"),
    )
}

#[test]
fn the_diagrams_in_the_reference_are_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/state-machine.md");
    let mut text = std::fs::read_to_string(&path).expect("docs/state-machine.md");
    let bless = std::env::var_os("TANDEM_BLESS").is_some();
    for topology in [Topology::MasterSlave, Topology::Standalone] {
        let (begin, end) = markers(topology);
        let start = text
            .find(&begin)
            .unwrap_or_else(|| panic!("{begin:?} missing"))
            + begin.len();
        let stop = start
            + text[start..]
                .find(&end)
                .unwrap_or_else(|| panic!("{end:?} missing"));
        let want = generated(topology);
        if bless {
            text.replace_range(start..stop, &want);
        } else {
            assert_eq!(
                &text[start..stop],
                want,
                "the {} diagram is stale: run TANDEM_BLESS=1 cargo test -p tandem-engine --test docs",
                topology.name()
            );
        }
    }
    if bless {
        std::fs::write(&path, text).expect("writing docs/state-machine.md");
    }
}
