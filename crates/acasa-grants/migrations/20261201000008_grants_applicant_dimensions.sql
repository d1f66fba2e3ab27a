-- The funnel's dimensions on each application: the applicant's district
-- (folded), sex and age band on the application day, as `grants.people` has
-- them now (NULL, NULL and unknown once the person is erased or not known).
-- Written by both projections — the read model's when an application comes
-- (from the person's row, read FOR SHARE), the registry view's whenever a
-- person's row changes — so each converges to the same values whatever their
-- order, and a funnel over the applications never joins the registry's
-- people (its cost follows the applications, not the registry's size).
ALTER TABLE grants.applications
    ADD COLUMN applicant_district text,
    ADD COLUMN applicant_sex      smallint,
    ADD COLUMN applicant_band     smallint NOT NULL DEFAULT 7;

UPDATE grants.applications a SET
    applicant_district = CASE WHEN p.status = 3 THEN NULL ELSE p.district_folded END,
    applicant_sex = CASE WHEN p.status = 3 THEN NULL ELSE p.sex END,
    applicant_band = CASE
        WHEN p.status = 3 OR p.birth_date IS NULL OR p.birth_date > a.applied_on THEN 7
        WHEN extract(year FROM age(a.applied_on, p.birth_date)) >= 45 THEN 6
        WHEN extract(year FROM age(a.applied_on, p.birth_date)) >= 36 THEN 5
        WHEN extract(year FROM age(a.applied_on, p.birth_date)) >= 30 THEN 4
        WHEN extract(year FROM age(a.applied_on, p.birth_date)) >= 25 THEN 3
        WHEN extract(year FROM age(a.applied_on, p.birth_date)) >= 18 THEN 2
        ELSE 1 END
FROM grants.people p WHERE p.person_id = a.person_id;
