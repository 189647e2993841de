-- Administrative units (đơn vị hành chính) as a tree with their official codes.
-- Since 1 July 2025 local government has two tiers, province -> commune; older data keeps a
-- district tier in between. The code length follows the national code list: 2 digits for a
-- province, 3 for a district, 5 for a commune (ward, commune or special zone).
CREATE TABLE units (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    level       text NOT NULL,
    parent_code text REFERENCES units (code),
    created_at  timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT units_level_valid CHECK (level IN ('province', 'district', 'commune')),
    CONSTRAINT units_code_format CHECK (
        (level = 'province' AND code ~ '^[0-9]{2}$')
        OR (level = 'district' AND code ~ '^[0-9]{3}$')
        OR (level = 'commune' AND code ~ '^[0-9]{5}$')
    ),
    CONSTRAINT units_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    -- Only a province stands at the root; every other unit hangs under one.
    CONSTRAINT units_parent_by_level CHECK ((level = 'province') = (parent_code IS NULL))
);

CREATE INDEX units_parent_code_idx ON units (parent_code, code);
CREATE INDEX units_level_idx ON units (level, code);
