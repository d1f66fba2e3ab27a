-- Erasure leaves a tombstone (`wrapped` NULL) instead of deleting the key's
-- row, so no key is ever made for an erased person again.
ALTER TABLE registry_vault.data_keys ALTER COLUMN wrapped DROP NOT NULL;
