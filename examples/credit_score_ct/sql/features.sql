-- Seed 001's pipelines/continuous_training/data_extract/features.sql (MySQL / MariaDB),
-- run by the `data_extract` task with split_statements=true in one transaction.
-- Three changes from the seed, each marked below:
--   * the tables come from the DAG's params (the seed's mlops.credit_score*, which a
--     test replaces with tables of its own);
--   * the DELETE also removes the rows of {{ ds }} itself, as the note intends
--     ("오늘 날짜의 데이터가 있다면 해당 데이터를 지우고 다시 추가"): re-running a date
--     replaces its rows instead of adding them twice;
--   * the numeric columns the source keeps as text with a trailing `_` (`23_`,
--     `34847.84_`, `_` for nothing) are cleaned into numbers, so the training
--     task reads numbers (the seed's pandas code would have to do it).
-- The categorical oddities (credit_mix `_`, payment_behaviour `!@9#%8`, occupation
-- `_______`) stay: the one-hot encoder learns them as categories of their own.

-- 1. 일주일 전 날짜 이전 데이터 삭제 (and, changed: the rows of {{ ds }})
DELETE FROM {{ params.target }}
WHERE base_dt <= DATE_FORMAT(
        DATE_ADD(
            STR_TO_DATE('{{ ds }}', '%Y-%m-%d'),
            INTERVAL -7 DAY
        ),
        '%Y-%m-%d'
    )
    OR base_dt = STR_TO_DATE('{{ ds }}', '%Y-%m-%d');

-- 2. 새로운 데이터 삽입
INSERT INTO {{ params.target }} (
        base_dt,
        id,
        customer_id,
        date,
        age,
        occupation,
        annual_income,
        monthly_inhand_salary,
        num_bank_accounts,
        num_credit_card,
        interest_rate,
        num_of_loan,
        type_of_loan,
        delay_from_due_date,
        num_of_delayed_payment,
        changed_credit_limit,
        num_credit_inquiries,
        credit_mix,
        outstanding_debt,
        credit_utilization_ratio,
        credit_history_age,
        payment_of_min_amount,
        total_emi_per_month,
        amount_invested_monthly,
        payment_behaviour,
        monthly_balance,
        credit_score
    )
SELECT STR_TO_DATE('{{ ds }}', '%Y-%m-%d') AS base_dt,
    b.id,
    b.customer_id,
    b.date,
    -- changed: text with a trailing `_` into a number, `_` alone into NULL
    CAST(NULLIF(TRIM(TRAILING '_' FROM a.age), '') AS DECIMAL(16, 4)),
    a.occupation,
    CAST(NULLIF(TRIM(TRAILING '_' FROM a.annual_income), '') AS DECIMAL(16, 4)),
    a.monthly_inhand_salary,
    a.num_bank_accounts,
    a.num_credit_card,
    a.interest_rate,
    CAST(NULLIF(TRIM(TRAILING '_' FROM a.num_of_loan), '') AS DECIMAL(16, 4)),
    a.type_of_loan,
    a.delay_from_due_date,
    CAST(NULLIF(TRIM(TRAILING '_' FROM a.num_of_delayed_payment), '') AS DECIMAL(16, 4)),
    CAST(NULLIF(TRIM(TRAILING '_' FROM a.changed_credit_limit), '') AS DECIMAL(16, 4)),
    a.num_credit_inquiries,
    a.credit_mix,
    CAST(NULLIF(TRIM(TRAILING '_' FROM a.outstanding_debt), '') AS DECIMAL(16, 4)),
    a.credit_utilization_ratio,
    a.credit_history_age,
    a.payment_of_min_amount,
    a.total_emi_per_month,
    a.amount_invested_monthly,
    a.payment_behaviour,
    a.monthly_balance,
    b.credit_score
FROM {{ params.features }} a
    INNER JOIN (
        SELECT *
        FROM {{ params.scores }}
        WHERE date BETWEEN DATE_ADD(
                STR_TO_DATE('{{ ds }}', '%Y-%m-%d'),
                INTERVAL -1 MONTH
            )
            AND STR_TO_DATE('{{ ds }}', '%Y-%m-%d')
    ) b ON a.id = b.id
    AND a.customer_id = b.customer_id;
