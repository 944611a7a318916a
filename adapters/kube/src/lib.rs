//! tandem-kube.
