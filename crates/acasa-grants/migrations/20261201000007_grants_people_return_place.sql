-- grants.people: the place returned to. The registry's PersonDataService
-- now opens a ReturnRecorded's return_details for the purpose eligibility
-- (the district and locality only), so the applicant's place can be the
-- eligibility rule's: the return's if a return is recorded, else home.
--
-- Both sides are kept, so that either can change in any order (details
-- updated after a return, a return corrected by a later one):
-- home_district and home_locality from the person's details;
-- return_district and return_locality from their latest ReturnRecorded
-- (NULL: none recorded, or it names none). district, district_folded,
-- locality and rural are from now on the applicant's place: the return's
-- (district and locality as a whole) if it names a district or a locality,
-- else the home's. Erasure sets all of them NULL.
--
-- Rows projected before this migration hold the home place only: they are
-- copied into home_*. A return recorded before it is known here after a
-- rebuild of the projection (`acasa rebuild grants.people`).
ALTER TABLE grants.people
    ADD COLUMN home_district   text,
    ADD COLUMN home_locality   text,
    ADD COLUMN return_district text,
    ADD COLUMN return_locality text;

UPDATE grants.people SET home_district = district, home_locality = locality WHERE status <> 3;
