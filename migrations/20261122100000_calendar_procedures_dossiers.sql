-- The working calendar, the procedure catalogue and dossiers with their timeline.

-- Days that break the Monday-to-Friday rule: public holidays and compensatory days off
-- (not worked) and make-up working days (a Saturday or Sunday worked in exchange).
CREATE TABLE calendar_days (
    day  date PRIMARY KEY,
    kind text NOT NULL,
    name text NOT NULL,

    CONSTRAINT calendar_days_kind_valid CHECK (kind IN ('holiday', 'day_off', 'working_day')),
    CONSTRAINT calendar_days_name_length CHECK (char_length(name) BETWEEN 1 AND 200)
);

-- Vietnam's public holidays (Labour Code art. 112) for 2025-2027 with the days off and make-up
-- days the Government announced for civil servants. 2027 had not been announced when this was
-- written: its Tết and compensatory days are the usual pattern, to be corrected by an admin
-- (PUT /v1/admin/calendar/{date}) once the Prime Minister's notice is out.
INSERT INTO calendar_days (day, kind, name) VALUES
    ('2025-01-01', 'holiday', 'Tết Dương lịch'),
    ('2025-01-27', 'holiday', 'Tết Nguyên đán Ất Tỵ'),
    ('2025-01-28', 'holiday', 'Tết Nguyên đán Ất Tỵ'),
    ('2025-01-29', 'holiday', 'Tết Nguyên đán Ất Tỵ'),
    ('2025-01-30', 'holiday', 'Tết Nguyên đán Ất Tỵ'),
    ('2025-01-31', 'holiday', 'Tết Nguyên đán Ất Tỵ'),
    ('2025-04-07', 'holiday', 'Giỗ Tổ Hùng Vương'),
    ('2025-04-26', 'working_day', 'Làm bù cho ngày 02/5/2025'),
    ('2025-04-30', 'holiday', 'Ngày Chiến thắng'),
    ('2025-05-01', 'holiday', 'Ngày Quốc tế Lao động'),
    ('2025-05-02', 'day_off', 'Nghỉ hoán đổi (làm bù thứ Bảy 26/4/2025)'),
    ('2025-09-01', 'holiday', 'Quốc khánh (ngày liền kề)'),
    ('2025-09-02', 'holiday', 'Quốc khánh'),
    ('2026-01-01', 'holiday', 'Tết Dương lịch'),
    ('2026-02-16', 'holiday', 'Tết Nguyên đán Bính Ngọ'),
    ('2026-02-17', 'holiday', 'Tết Nguyên đán Bính Ngọ'),
    ('2026-02-18', 'holiday', 'Tết Nguyên đán Bính Ngọ'),
    ('2026-02-19', 'holiday', 'Tết Nguyên đán Bính Ngọ'),
    ('2026-02-20', 'holiday', 'Tết Nguyên đán Bính Ngọ'),
    ('2026-04-27', 'day_off', 'Nghỉ bù Giỗ Tổ Hùng Vương (Chủ nhật 26/4/2026)'),
    ('2026-04-30', 'holiday', 'Ngày Chiến thắng'),
    ('2026-05-01', 'holiday', 'Ngày Quốc tế Lao động'),
    ('2026-09-01', 'holiday', 'Quốc khánh (ngày liền kề)'),
    ('2026-09-02', 'holiday', 'Quốc khánh'),
    ('2027-01-01', 'holiday', 'Tết Dương lịch'),
    ('2027-02-04', 'holiday', 'Tết Nguyên đán Đinh Mùi'),
    ('2027-02-05', 'holiday', 'Tết Nguyên đán Đinh Mùi'),
    ('2027-02-08', 'holiday', 'Tết Nguyên đán Đinh Mùi'),
    ('2027-02-09', 'holiday', 'Tết Nguyên đán Đinh Mùi'),
    ('2027-02-10', 'holiday', 'Tết Nguyên đán Đinh Mùi'),
    ('2027-04-16', 'holiday', 'Giỗ Tổ Hùng Vương'),
    ('2027-04-30', 'holiday', 'Ngày Chiến thắng'),
    ('2027-05-03', 'day_off', 'Nghỉ bù Ngày Quốc tế Lao động (thứ Bảy 01/5/2027)'),
    ('2027-09-02', 'holiday', 'Quốc khánh'),
    ('2027-09-03', 'holiday', 'Quốc khánh (ngày liền kề)');

-- The catalogue of administrative procedures (thủ tục hành chính).
CREATE TABLE procedures (
    code               text PRIMARY KEY,
    name               text NOT NULL,
    -- lĩnh vực: civil status, certification, residence, construction, ...
    field              text NOT NULL,
    -- The level of unit that handles it.
    level              text NOT NULL,
    fully_online       boolean NOT NULL DEFAULT false,
    -- Processing time: working days, or office hours for same-day procedures.
    working_days       integer,
    working_hours      integer,
    -- [{code, name, mandatory}]
    required_documents jsonb NOT NULL DEFAULT '[]',
    -- [{kind: fee|charge, name, amount}]
    fees               jsonb NOT NULL DEFAULT '[]',
    fee_timing         text NOT NULL DEFAULT 'on_receipt',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT procedures_code_format CHECK (code ~ '^[0-9A-Za-z][0-9A-Za-z.\-]{2,39}$'),
    CONSTRAINT procedures_name_length CHECK (char_length(name) BETWEEN 1 AND 300),
    CONSTRAINT procedures_field_length CHECK (char_length(field) BETWEEN 1 AND 100),
    CONSTRAINT procedures_level_valid CHECK (level IN ('province', 'commune')),
    CONSTRAINT procedures_one_processing_time CHECK (
        (working_days IS NULL) <> (working_hours IS NULL)
        AND COALESCE(working_days, 1) BETWEEN 1 AND 365
        AND COALESCE(working_hours, 1) BETWEEN 1 AND 40
    ),
    CONSTRAINT procedures_fee_timing_valid CHECK (fee_timing IN ('on_receipt', 'before_result'))
);

CREATE INDEX procedures_field_idx ON procedures (field, code);

-- Per unit and day, the last dossier number given: the counter row is locked and bumped in
-- the submitting transaction, so numbers have no gaps (a rollback returns its number) and no
-- duplicates.
CREATE TABLE dossier_counters (
    unit_code text NOT NULL REFERENCES units (code),
    day       date NOT NULL,
    last      integer NOT NULL,
    PRIMARY KEY (unit_code, day)
);

CREATE TABLE dossiers (
    id                     uuid PRIMARY KEY,
    code                   text NOT NULL,
    procedure_code         text NOT NULL REFERENCES procedures (code),
    unit_code              text NOT NULL REFERENCES units (code),
    -- The unit's province, so a province's dossiers are one index range.
    province_code          text NOT NULL REFERENCES units (code),
    status                 text NOT NULL,
    channel                text NOT NULL,
    -- The citizen's account; NULL for an applicant without one yet (claimed when they register
    -- with applicant_phone).
    applicant_id           uuid REFERENCES accounts (id),
    applicant_name         text NOT NULL,
    applicant_phone        text NOT NULL,
    applicant_national_id  text,
    result_delivery        text NOT NULL DEFAULT 'counter',
    postal_address         text,
    submitted_at           timestamptz NOT NULL DEFAULT now(),
    received_at            timestamptz,
    -- When the result is due; moved by pauses, restarted by a supplement.
    due_at                 timestamptz,
    -- Set while the clock is stopped (awaiting payment, suspended, waiting for a supplement).
    paused_at              timestamptz,
    appointment_at         timestamptz,
    rescheduled_at         timestamptz,
    finished_at            timestamptz,
    returned_at            timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    -- The worklist's order: by due time, those without one (not yet received) last.
    due_sort               timestamptz NOT NULL GENERATED ALWAYS AS (COALESCE(due_at, '9999-12-31 00:00:00+00'::timestamptz)) STORED,

    CONSTRAINT dossiers_code_key UNIQUE (code),
    CONSTRAINT dossiers_status_valid CHECK (status IN (
        'submitted', 'received', 'refused', 'processing', 'supplement_requested', 'awaiting_payment',
        'withdrawn', 'suspended', 'result_ready', 'rejected', 'returned')),
    CONSTRAINT dossiers_channel_valid CHECK (channel IN ('online', 'counter')),
    CONSTRAINT dossiers_result_delivery_valid CHECK (
        (result_delivery = 'counter' AND postal_address IS NULL)
        OR (result_delivery = 'postal' AND postal_address IS NOT NULL)),
    CONSTRAINT dossiers_applicant_name_length CHECK (char_length(applicant_name) BETWEEN 1 AND 200)
);

CREATE INDEX dossiers_applicant_idx ON dossiers (applicant_id, created_at DESC, id DESC);
CREATE INDEX dossiers_unclaimed_phone_idx ON dossiers (applicant_phone) WHERE applicant_id IS NULL;
-- Worklists: the open dossiers of a unit, of a province, or of all, in due order (the partial
-- predicate is the one `reading` writes for its default filter, so the planner can use them);
-- and, for a list filtered by one status, the same by status.
CREATE INDEX dossiers_open_unit_idx ON dossiers (unit_code, due_sort, id) WHERE status IN (
    'submitted', 'received', 'processing', 'supplement_requested', 'awaiting_payment', 'suspended',
    'result_ready', 'rejected');
CREATE INDEX dossiers_open_province_idx ON dossiers (province_code, due_sort, id) WHERE status IN (
    'submitted', 'received', 'processing', 'supplement_requested', 'awaiting_payment', 'suspended',
    'result_ready', 'rejected');
CREATE INDEX dossiers_open_idx ON dossiers (due_sort, id) WHERE status IN (
    'submitted', 'received', 'processing', 'supplement_requested', 'awaiting_payment', 'suspended',
    'result_ready', 'rejected');
CREATE INDEX dossiers_unit_status_idx ON dossiers (unit_code, status, due_sort, id);
CREATE INDEX dossiers_province_status_idx ON dossiers (province_code, status, due_sort, id);

-- A dossier as lists and tracking show it: names joined, the national status code, and whether
-- it is late (finished after its due time; or unfinished, not closed, and past it — a paused
-- clock counts up to the pause).
CREATE VIEW dossier_summaries AS
SELECT d.id, d.code, d.procedure_code, p.name AS procedure_name, d.unit_code, u.name AS unit_name,
       d.province_code, d.status,
       CASE d.status
           WHEN 'submitted' THEN 1 WHEN 'received' THEN 2 WHEN 'refused' THEN 3 WHEN 'processing' THEN 4
           WHEN 'supplement_requested' THEN 5 WHEN 'awaiting_payment' THEN 6 WHEN 'withdrawn' THEN 7
           WHEN 'suspended' THEN 8 WHEN 'result_ready' THEN 9 WHEN 'rejected' THEN 9 WHEN 'returned' THEN 10
       END AS national_status_code,
       d.channel, d.applicant_id, d.applicant_name, d.submitted_at, d.received_at, d.due_at,
       d.appointment_at, d.finished_at, d.returned_at, d.created_at, d.due_sort,
       COALESCE(d.due_at IS NOT NULL AND CASE
           WHEN d.finished_at IS NOT NULL THEN d.finished_at > d.due_at
           WHEN d.status IN ('refused', 'withdrawn') THEN false
           ELSE COALESCE(d.paused_at, now()) > d.due_at
       END, false) AS overdue
FROM dossiers d
JOIN procedures p ON p.code = d.procedure_code
JOIN units u ON u.code = d.unit_code;

CREATE TABLE dossier_documents (
    id          uuid PRIMARY KEY,
    dossier_id  uuid NOT NULL REFERENCES dossiers (id),
    -- The procedure's document code it answers, if any.
    code        text,
    name        text NOT NULL,
    sha256      text NOT NULL,
    size_bytes  bigint NOT NULL,
    storage_uri text NOT NULL,
    -- The move it came with: submit, receive_at_counter, supplement, approve, ...
    added_with  text NOT NULL,
    added_by    uuid REFERENCES accounts (id),
    added_at    timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT dossier_documents_sha256_format CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT dossier_documents_size_positive CHECK (size_bytes > 0)
);

CREATE INDEX dossier_documents_dossier_idx ON dossier_documents (dossier_id, added_at);

-- Every move of a dossier, written in the transaction of the move.
CREATE TABLE dossier_events (
    id          bigserial PRIMARY KEY,
    dossier_id  uuid NOT NULL REFERENCES dossiers (id),
    action      text NOT NULL,
    from_status text,
    to_status   text NOT NULL,
    -- NULL for the system (a paid bill).
    actor_id    uuid REFERENCES accounts (id),
    actor_role  text NOT NULL,
    reason      text,
    note        text,
    at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX dossier_events_dossier_idx ON dossier_events (dossier_id, id);

CREATE TABLE dossier_ratings (
    dossier_id uuid PRIMARY KEY REFERENCES dossiers (id),
    score      integer NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment    text,
    created_at timestamptz NOT NULL DEFAULT now()
);
