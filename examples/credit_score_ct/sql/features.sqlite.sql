-- The SQLite variant of features.sql (the embedded default of `feature_store`),
-- chosen when the connection's type is `sqlite`: the same two statements with
-- SQLite's date functions (dates are 'YYYY-MM-DD' text, which compares as dates)
-- and RTRIM(x, '_') for MySQL's TRIM(TRAILING '_' FROM x). See features.sql for
-- what differs from the seed. One more difference, SQLite's own: at a month's end
-- date('2025-03-31', '-1 month') is 2025-03-03 where MySQL's DATE_ADD gives 2025-02-28.

-- 1. 일주일 전 날짜 이전 데이터 삭제 (and, changed: the rows of {{ ds }})
DELETE FROM {{ params.target }}
WHERE base_dt <= date('{{ ds }}', '-7 day')
    OR base_dt = date('{{ ds }}');

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
SELECT date('{{ ds }}') AS base_dt,
    b.id,
    b.customer_id,
    b.date,
    -- changed: text with a trailing `_` into a number, `_` alone into NULL
    CAST(NULLIF(RTRIM(a.age, '_'), '') AS REAL),
    a.occupation,
    CAST(NULLIF(RTRIM(a.annual_income, '_'), '') AS REAL),
    a.monthly_inhand_salary,
    a.num_bank_accounts,
    a.num_credit_card,
    a.interest_rate,
    CAST(NULLIF(RTRIM(a.num_of_loan, '_'), '') AS REAL),
    a.type_of_loan,
    a.delay_from_due_date,
    CAST(NULLIF(RTRIM(a.num_of_delayed_payment, '_'), '') AS REAL),
    CAST(NULLIF(RTRIM(a.changed_credit_limit, '_'), '') AS REAL),
    a.num_credit_inquiries,
    a.credit_mix,
    CAST(NULLIF(RTRIM(a.outstanding_debt, '_'), '') AS REAL),
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
        WHERE date BETWEEN date('{{ ds }}', '-1 month')
            AND date('{{ ds }}')
    ) b ON a.id = b.id
    AND a.customer_id = b.customer_id;
