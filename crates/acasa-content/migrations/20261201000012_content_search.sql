-- The public search (crate::public) ranks every match, reading each match's
-- text-search vector. A published row (the rendered body twice, the vector)
-- is larger than the 2 kB TOAST target, so the vector was moved out of line
-- and ts_rank_cd fetched it through the TOAST index once per match: two
-- thirds of a search matching 5,000 versions (`make bench`). STORAGE MAIN
-- keeps it in the row (compressed if need be, out of line only when the row
-- would not fit a page); the bodies, read one article at a time, still go to
-- TOAST first. Rows written before are rewritten with the same vectors.
ALTER TABLE content.published ALTER COLUMN tsv SET STORAGE MAIN;
UPDATE content.published SET tsv = tsv || ''::tsvector;
