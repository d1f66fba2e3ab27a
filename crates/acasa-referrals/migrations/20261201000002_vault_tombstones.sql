-- Erasure leaves a tombstone (`wrapped` NULL) instead of deleting the key's
-- row, so no key is ever made for an erased person again (a CreateReferral
-- racing the erasure is refused instead of sealing under a fresh key).
ALTER TABLE referrals_vault.data_keys ALTER COLUMN wrapped DROP NOT NULL;
