//! tandem-crds.
