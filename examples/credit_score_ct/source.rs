//! The seed's source tables, `credit_score_features` (one row of features per
//! id) and `credit_score` (each id's date and grade), synthesized: the seed
//! reads a Kaggle export that is not shipped here.
//!
//! Deterministic: each day's rows come from an RNG seeded with the day, so a
//! day holds the same rows whoever writes it, on SQLite or MariaDB.
//! Idempotent: [`ensure`] creates the tables when missing and writes only the
//! days of the window that are not there yet, all in one transaction.
//!
//! The rows keep the oddities of the real data: numbers stored as text with a
//! trailing `_` (`23_`, `34847.84_`) or `_` alone for nothing, NULLs in
//! numeric columns, `_` in `credit_mix`, `!@9#%8` in `payment_behaviour`,
//! `_______` in `occupation`. The grade depends on a hidden credit quality
//! that also drives the payment delays, the debt, the interest rate, the
//! credit mix and whether only the minimum is paid, so a model has something
//! to learn.

use std::collections::HashSet;

use chrono::NaiveDate;
use gust::hooks::sql::{Parameters, RunOptions, Sql, SqlHook};
use gust::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Rows per day of `credit_score`.
pub const ROWS_PER_DAY: usize = 60;
/// How many days up to the logical date [`ensure`] fills: a little more than
/// the month `features.sql` reads.
pub const HISTORY_DAYS: i64 = 35;
/// The grades, as the real data spells them.
pub const GRADES: [&str; 3] = ["Good", "Poor", "Standard"];

const SEED: u64 = 0x5eed_0001;

/// The three tables of the seed (`mlops.credit_score`, `credit_score_features`,
/// `credit_score_features_target`).
#[derive(Debug, Clone)]
pub struct Tables {
    /// One row of features per `id`.
    pub features: String,
    /// `id`, `customer_id`, `date` and the grade.
    pub scores: String,
    /// What the extract writes: the join, per `base_dt`.
    pub target: String,
}

impl Default for Tables {
    fn default() -> Self {
        Tables {
            features: "credit_score_features".into(),
            scores: "credit_score".into(),
            target: "credit_score_features_target".into(),
        }
    }
}

/// The feature columns of the source, with their SQL types (the same text on
/// MySQL and SQLite: VARCHAR has SQLite's text affinity, DOUBLE real, INT
/// integer). The text ones hold numbers with the export's `_` noise.
const FEATURE_COLUMNS: [(&str, &str); 22] = [
    ("age", "VARCHAR(8)"),
    ("occupation", "VARCHAR(32)"),
    ("annual_income", "VARCHAR(24)"),
    ("monthly_inhand_salary", "DOUBLE"),
    ("num_bank_accounts", "INT"),
    ("num_credit_card", "INT"),
    ("interest_rate", "INT"),
    ("num_of_loan", "VARCHAR(8)"),
    ("type_of_loan", "VARCHAR(255)"),
    ("delay_from_due_date", "INT"),
    ("num_of_delayed_payment", "VARCHAR(8)"),
    ("changed_credit_limit", "VARCHAR(16)"),
    ("num_credit_inquiries", "DOUBLE"),
    ("credit_mix", "VARCHAR(16)"),
    ("outstanding_debt", "VARCHAR(16)"),
    ("credit_utilization_ratio", "DOUBLE"),
    ("credit_history_age", "VARCHAR(32)"),
    ("payment_of_min_amount", "VARCHAR(8)"),
    ("total_emi_per_month", "DOUBLE"),
    ("amount_invested_monthly", "DOUBLE"),
    ("payment_behaviour", "VARCHAR(40)"),
    ("monthly_balance", "DOUBLE"),
];

/// The columns `features.sql` turns from text into numbers.
const CLEANED: [&str; 6] = [
    "age",
    "annual_income",
    "num_of_loan",
    "num_of_delayed_payment",
    "changed_credit_limit",
    "outstanding_debt",
];

/// `CREATE TABLE IF NOT EXISTS` for the three tables.
pub fn ddl(t: &Tables) -> Vec<String> {
    let features: Vec<String> = FEATURE_COLUMNS
        .iter()
        .map(|(c, ty)| format!("{c} {ty}"))
        .collect();
    let target: Vec<String> = FEATURE_COLUMNS
        .iter()
        .map(|(c, ty)| {
            let ty = if CLEANED.contains(c) { "DOUBLE" } else { ty };
            format!("{c} {ty}")
        })
        .collect();
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {} (id VARCHAR(16) NOT NULL, customer_id VARCHAR(16) NOT NULL, \
             {}, PRIMARY KEY (id, customer_id))",
            t.features,
            features.join(", ")
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (id VARCHAR(16) NOT NULL, customer_id VARCHAR(16) NOT NULL, \
             date DATE NOT NULL, credit_score VARCHAR(16) NOT NULL, PRIMARY KEY (id, customer_id))",
            t.scores
        ),
        // The key makes a second INSERT of a date fail instead of doubling it.
        format!(
            "CREATE TABLE IF NOT EXISTS {} (base_dt DATE NOT NULL, id VARCHAR(16) NOT NULL, \
             customer_id VARCHAR(16) NOT NULL, date DATE, {}, credit_score VARCHAR(16), \
             PRIMARY KEY (base_dt, id, customer_id))",
            t.target,
            target.join(", ")
        ),
    ]
}

/// Creates the tables when missing and writes the synthetic rows of every day
/// of `[ds - HISTORY_DAYS, ds]` that `scores` does not hold yet, in one
/// transaction. Returns how many days it wrote (0 on a second call).
pub async fn ensure(db: &dyn SqlHook, t: &Tables, ds: NaiveDate) -> Result<usize> {
    db.run(
        Sql::Many(ddl(t)),
        RunOptions {
            autocommit: true,
            ..Default::default()
        },
    )
    .await?;
    let first = ds - chrono::Duration::days(HISTORY_DAYS);
    let present: HashSet<String> = db
        .get_records(
            &format!(
                "SELECT DISTINCT date AS d FROM {} WHERE date BETWEEN '{first}' AND '{ds}'",
                t.scores
            ),
            Parameters::None,
        )
        .await?
        .into_iter()
        .filter_map(|r| r["d"].as_str().map(|d| d[..10].to_string()))
        .collect();
    let missing: Vec<NaiveDate> = first
        .iter_days()
        .take_while(|d| *d <= ds)
        .filter(|d| !present.contains(&d.to_string()))
        .collect();
    if missing.is_empty() {
        return Ok(0);
    }
    let rows: Vec<Record> = missing.iter().flat_map(|d| day(*d)).collect();
    let mut statements = Vec::new();
    for chunk in rows.chunks(250) {
        let columns: Vec<&str> = FEATURE_COLUMNS.iter().map(|(c, _)| *c).collect();
        statements.push(format!(
            "INSERT INTO {} (id, customer_id, {}) VALUES {}",
            t.features,
            columns.join(", "),
            chunk
                .iter()
                .map(|r| {
                    let cells: Vec<String> = [lit(&r.id), lit(&r.customer_id)]
                        .into_iter()
                        .chain(r.features.iter().map(Cell::sql))
                        .collect();
                    format!("({})", cells.join(", "))
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
        statements.push(format!(
            "INSERT INTO {} (id, customer_id, date, credit_score) VALUES {}",
            t.scores,
            chunk
                .iter()
                .map(|r| {
                    format!(
                        "({}, {}, '{}', {})",
                        lit(&r.id),
                        lit(&r.customer_id),
                        r.date,
                        lit(r.grade)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    db.run(Sql::Many(statements), RunOptions::default()).await?;
    tracing::info!(
        days = missing.len(),
        rows = rows.len(),
        table = %t.scores,
        "synthetic source rows written"
    );
    Ok(missing.len())
}

/// A SQL string literal (the generator's text never holds a quote, but a
/// doubled one is what SQL wants if it did).
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One value of a feature column.
#[derive(Debug, Clone)]
enum Cell {
    Text(Option<String>),
    Number(Option<f64>),
}

impl Cell {
    fn sql(&self) -> String {
        match self {
            Cell::Text(Some(s)) => lit(s),
            Cell::Number(Some(v)) => format!("{v}"),
            Cell::Text(None) | Cell::Number(None) => "NULL".into(),
        }
    }
}

/// One synthetic customer-month.
#[derive(Debug, Clone)]
struct Record {
    id: String,
    customer_id: String,
    date: NaiveDate,
    features: Vec<Cell>,
    grade: &'static str,
}

const OCCUPATIONS: [&str; 15] = [
    "Scientist",
    "Teacher",
    "Engineer",
    "Entrepreneur",
    "Developer",
    "Lawyer",
    "Media_Manager",
    "Doctor",
    "Journalist",
    "Manager",
    "Accountant",
    "Musician",
    "Mechanic",
    "Writer",
    "Architect",
];
const LOANS: [&str; 6] = [
    "Auto Loan",
    "Credit-Builder Loan",
    "Personal Loan",
    "Home Equity Loan",
    "Mortgage Loan",
    "Student Loan",
];
const BEHAVIOURS: [&str; 6] = [
    "High_spent_Small_value_payments",
    "Low_spent_Large_value_payments",
    "Low_spent_Medium_value_payments",
    "Low_spent_Small_value_payments",
    "High_spent_Medium_value_payments",
    "High_spent_Large_value_payments",
];

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A number as the export writes it: sometimes with a trailing `_`.
fn noisy(rng: &mut ChaCha8Rng, text: String, p_underscore: f64) -> Cell {
    if rng.random_bool(p_underscore) {
        Cell::Text(Some(format!("{text}_")))
    } else {
        Cell::Text(Some(text))
    }
}

fn maybe_null(rng: &mut ChaCha8Rng, v: f64, p_null: f64) -> Cell {
    Cell::Number((!rng.random_bool(p_null)).then_some(v))
}

/// The rows of one day: the same for the same day, always.
fn day(date: NaiveDate) -> Vec<Record> {
    use chrono::Datelike;
    let n = i64::from(date.num_days_from_ce());
    let mut rng = ChaCha8Rng::seed_from_u64(SEED ^ n as u64);
    (0..ROWS_PER_DAY)
        .map(|i| {
            // The hidden credit quality everything informative follows.
            let q = normal(&mut rng);
            let clamp = |v: f64, lo: f64, hi: f64| v.clamp(lo, hi);
            let age = rng.random_range(18..70);
            let occupation = if rng.random_bool(0.07) {
                "_______".to_string()
            } else {
                OCCUPATIONS[rng.random_range(0..OCCUPATIONS.len())].to_string()
            };
            let income = (rng.random_range(9_000f64.ln()..180_000f64.ln())).exp();
            let salary = income / 12.0 * rng.random_range(0.7..0.9);
            let loans = rng.random_range(0..9);
            let type_of_loan = if loans == 0 {
                None
            } else {
                let picked: Vec<&str> = (0..loans.min(4))
                    .map(|_| LOANS[rng.random_range(0..LOANS.len())])
                    .collect();
                Some(picked.join(", and "))
            };
            let delay = clamp(25.0 - 12.0 * q + 8.0 * normal(&mut rng), 0.0, 62.0).round();
            let delayed = clamp(12.0 - 5.0 * q + 4.0 * normal(&mut rng), 0.0, 28.0).round();
            let debt = clamp(1400.0 - 800.0 * q + 600.0 * normal(&mut rng), 0.0, 5000.0);
            let interest = clamp(15.0 - 6.0 * q + 5.0 * normal(&mut rng), 1.0, 34.0).round();
            let cards = clamp(5.5 - 1.5 * q + 1.5 * normal(&mut rng), 1.0, 11.0).round();
            let mix_signal = q + 0.6 * normal(&mut rng);
            let credit_mix = if rng.random_bool(0.2) {
                "_"
            } else if mix_signal > 0.6 {
                "Good"
            } else if mix_signal < -0.6 {
                "Bad"
            } else {
                "Standard"
            };
            let min_signal = q + 0.8 * normal(&mut rng);
            let min_amount = if rng.random_bool(0.12) {
                "NM"
            } else if min_signal > 0.2 {
                "No"
            } else {
                "Yes"
            };
            let behaviour = if rng.random_bool(0.07) {
                "!@9#%8"
            } else {
                BEHAVIOURS[rng.random_range(0..BEHAVIOURS.len())]
            };
            let history = (!rng.random_bool(0.09)).then(|| {
                format!(
                    "{} Years and {} Months",
                    rng.random_range(1..33),
                    rng.random_range(0..12)
                )
            });
            let changed_limit = if rng.random_bool(0.03) {
                Cell::Text(Some("_".into()))
            } else {
                let v: f64 = rng.random_range(-5.0..30.0);
                Cell::Text(Some(format!("{v:.2}")))
            };
            let delayed_cell = if rng.random_bool(0.07) {
                Cell::Text(None)
            } else {
                noisy(&mut rng, format!("{delayed}"), 0.05)
            };
            let accounts = f64::from(rng.random_range(0..11));
            let inquiries = f64::from(rng.random_range(0..17));
            let utilization = (rng.random_range(20.0..50.0f64) * 1000.0).round() / 1000.0;
            let emi = (rng.random_range(0.0..500.0f64) * 100.0).round() / 100.0;
            let invested = (rng.random_range(10.0..800.0f64) * 100.0).round() / 100.0;
            let balance = (rng.random_range(0.0..1200.0f64) * 100.0).round() / 100.0;
            let features = vec![
                noisy(&mut rng, age.to_string(), 0.05),
                Cell::Text(Some(occupation)),
                noisy(&mut rng, format!("{income:.2}"), 0.1),
                maybe_null(&mut rng, (salary * 100.0).round() / 100.0, 0.15),
                Cell::Number(Some(accounts)),
                Cell::Number(Some(cards)),
                Cell::Number(Some(interest)),
                noisy(&mut rng, loans.to_string(), 0.05),
                Cell::Text(type_of_loan),
                Cell::Number(Some(delay)),
                delayed_cell,
                changed_limit,
                maybe_null(&mut rng, inquiries, 0.02),
                Cell::Text(Some(credit_mix.into())),
                noisy(&mut rng, format!("{debt:.2}"), 0.01),
                Cell::Number(Some(utilization)),
                Cell::Text(history),
                Cell::Text(Some(min_amount.into())),
                Cell::Number(Some(emi)),
                maybe_null(&mut rng, invested, 0.04),
                Cell::Text(Some(behaviour.into())),
                maybe_null(&mut rng, balance, 0.01),
            ];
            let s = q + 0.45 * normal(&mut rng);
            let grade = if s > 1.0 {
                GRADES[0]
            } else if s < -0.6 {
                GRADES[1]
            } else {
                GRADES[2]
            };
            Record {
                id: format!("0x{:x}", n * 1000 + i as i64),
                customer_id: format!("CUS_0x{:04x}", rng.random_range(0..0x10000)),
                date,
                features,
                grade,
            }
        })
        .collect()
}
