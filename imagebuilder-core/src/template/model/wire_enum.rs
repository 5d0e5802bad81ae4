//! Enumerations whose values are fixed strings in the template JSON.

/// An enum with a fixed set of JSON spellings.
pub trait WireEnum: Sized + Copy + 'static {
    /// Every value with its JSON spelling.
    const VARIANTS: &'static [(&'static str, Self)];

    /// The JSON spelling of this value.
    fn as_str(self) -> &'static str;

    /// The spellings, for messages: `'Enabled', 'Disabled'`.
    fn expected() -> String {
        let names: Vec<String> = Self::VARIANTS
            .iter()
            .map(|(name, _)| format!("'{name}'"))
            .collect();
        names.join(", ")
    }
}

/// Declares a [`WireEnum`] with its JSON spellings and a `Serialize` impl.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $crate::template::model::WireEnum for $name {
            const VARIANTS: &'static [(&'static str, Self)] = &[$( ($text, Self::$variant) ),+];

            fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text ),+
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str($crate::template::model::WireEnum::as_str(*self))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            /// Exact spellings only: this reads files this library wrote. Templates go through
            /// the parser, which applies AIB's case rules.
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                <Self as $crate::template::model::WireEnum>::VARIANTS
                    .iter()
                    .find(|(name, _)| *name == text)
                    .map(|(_, value)| *value)
                    .ok_or_else(|| {
                        serde::de::Error::custom(format!(
                            "'{text}' is not one of {}",
                            <Self as $crate::template::model::WireEnum>::expected()
                        ))
                    })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::template::model::WireEnum::as_str(*self))
            }
        }
    };
}

pub(crate) use wire_enum;
