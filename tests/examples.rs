//! The example `ZenithCluster` objects committed in `crds/examples/`.

/// An example object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Example {
    /// `crds/examples/master-slave.yaml`: two members.
    MasterSlave,
    /// `crds/examples/standalone.yaml`: one member, every knob at its default.
    Standalone,
}

impl Example {
    /// Both examples.
    pub const ALL: [Example; 2] = [Example::MasterSlave, Example::Standalone];

    /// The file's text.
    pub fn text(self) -> &'static str {
        match self {
            Example::MasterSlave => include_str!("../crds/examples/master-slave.yaml"),
            Example::Standalone => include_str!("../crds/examples/standalone.yaml"),
        }
    }

    /// The object as JSON.
    pub fn json(self) -> serde_json::Value {
        serde_saphyr::from_str(self.text()).expect("the committed example is valid YAML")
    }

    /// The object's name.
    pub fn name(self) -> String {
        let json = self.json();
        json["metadata"]["name"]
            .as_str()
            .expect("the example has a name")
            .to_owned()
    }
}
