//! Writes the `ZenithCluster` CRD manifest to `crds/yaml/` (or to the directory given as the
//! only argument).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let directory = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("yaml"));
    let path = directory.join(tandem_crds::generate::CRD_FILE);
    let written = std::fs::create_dir_all(&directory)
        .and_then(|()| std::fs::write(&path, tandem_crds::crd_yaml()));
    match written {
        Ok(()) => {
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("crdgen: cannot write {}: {error}", path.display());
            ExitCode::FAILURE
        }
    }
}
