//! The shared profile, sealed with the person's data key of this service
//! (AES-256-GCM, see `acasa-vault`). The associated data binds the ciphertext
//! to its referral and person, so a profile cannot be moved to another
//! referral. After erasure the key is gone and the profile unreadable.

use acasa_proto::{Message as _, referrals::v1 as pb};
use acasa_vault::{DataKey, VaultError};
use uuid::Uuid;

fn aad(referral: Uuid, person: Uuid) -> Vec<u8> {
    format!("referral-profile|{referral}|{person}").into_bytes()
}

/// Seals `profile` for `referral` of `person`.
pub fn seal(key: &DataKey, referral: Uuid, person: Uuid, profile: &pb::SharedProfile) -> Result<Vec<u8>, VaultError> {
    key.seal(&aad(referral, person), &profile.encode_to_vec())
}

/// Opens a sealed profile; `None` if it does not open under this key and binding.
pub fn open(key: &DataKey, referral: Uuid, person: Uuid, sealed: &[u8]) -> Option<pb::SharedProfile> {
    let plain = key.open(&aad(referral, person), sealed).ok()?;
    pb::SharedProfile::decode(plain.as_slice()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_opens_only_for_its_referral_person_and_key() {
        let key = DataKey::generate();
        let (r, p) = (Uuid::now_v7(), Uuid::now_v7());
        let profile = pb::SharedProfile {
            display_name: "Maria Ceban".into(),
            phone: "+37369111222".into(),
            ..Default::default()
        };
        let sealed = seal(&key, r, p, &profile).unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"Maria"));
        assert_eq!(open(&key, r, p, &sealed), Some(profile));
        assert_eq!(open(&key, Uuid::now_v7(), p, &sealed), None);
        assert_eq!(open(&key, r, Uuid::now_v7(), &sealed), None);
        assert_eq!(open(&DataKey::generate(), r, p, &sealed), None);
        assert_eq!(open(&key, r, p, b"garbage"), None);
    }
}
