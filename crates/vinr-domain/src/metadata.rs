//! Merchant metadata: string → string, bounded (SPEC §2), echoed verbatim, never interpreted.

use std::collections::BTreeMap;

use crate::limits::{METADATA_KEYS_MAX, METADATA_KEY_LEN_MAX, METADATA_VALUE_LEN_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    TooManyKeys,
    EmptyKey,
    KeyTooLong(String),
    ValueTooLong(String),
}

impl std::fmt::Display for MetadataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetadataError::TooManyKeys => {
                write!(f, "metadata may have at most {METADATA_KEYS_MAX} keys")
            }
            MetadataError::EmptyKey => write!(f, "metadata keys may not be empty"),
            MetadataError::KeyTooLong(key) => write!(
                f,
                "metadata key `{key}` is longer than {METADATA_KEY_LEN_MAX} characters"
            ),
            MetadataError::ValueTooLong(key) => write!(
                f,
                "metadata value for `{key}` is longer than {METADATA_VALUE_LEN_MAX} characters"
            ),
        }
    }
}

pub fn validate(metadata: &BTreeMap<String, String>) -> Result<(), MetadataError> {
    if metadata.len() > METADATA_KEYS_MAX {
        return Err(MetadataError::TooManyKeys);
    }
    for (key, value) in metadata {
        if key.is_empty() {
            return Err(MetadataError::EmptyKey);
        }
        if key.chars().count() > METADATA_KEY_LEN_MAX {
            return Err(MetadataError::KeyTooLong(
                key.chars().take(METADATA_KEY_LEN_MAX).collect(),
            ));
        }
        if value.chars().count() > METADATA_VALUE_LEN_MAX {
            return Err(MetadataError::ValueTooLong(key.clone()));
        }
    }
    Ok(())
}
