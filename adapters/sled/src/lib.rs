//! tandem-sled.
