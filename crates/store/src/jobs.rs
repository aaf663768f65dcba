//! Scheduled jobs: when each is due, runs asked for, how the last run went; and the settings
//! changed through the API, one JSON document per key.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::flag;
use crate::{Error, Reader, Store, WriteTx, from_micros, to_micros};

/// A job as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// Its name, e.g. `crl_refresh`.
    pub name: String,
    /// Whether it runs on its schedule (a run asked for runs anyway).
    pub enabled: bool,
    /// When it runs, as the authority writes schedules (`every 60s`, `daily 02:00`).
    pub schedule: String,
    /// When it is due next.
    pub next_run_at: OffsetDateTime,
    /// When someone asked for a run that has not started yet.
    pub run_requested_at: Option<OffsetDateTime>,
    /// The last run.
    pub last: Option<JobRun>,
    /// Runs since the job was created.
    pub runs: i64,
    /// Of them, how many failed.
    pub failures: i64,
}

/// How a run went, or how far one has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    /// The node that ran it.
    pub node: String,
    /// When it started.
    pub started_at: OffsetDateTime,
    /// `None` while it runs (or when its node died running it).
    pub finished_at: Option<OffsetDateTime>,
    /// How long it took.
    pub duration_ms: Option<i64>,
    /// `running`, `succeeded` or `failed`.
    pub outcome: String,
    /// What it did, for people.
    pub summary: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// The end of a run.
#[derive(Debug, Clone)]
pub struct JobEnd {
    /// When it started: a run asked for before then is done by it.
    pub started_at: OffsetDateTime,
    /// When it ended.
    pub finished_at: OffsetDateTime,
    /// How long it took.
    pub duration_ms: i64,
    /// Whether it did its work.
    pub succeeded: bool,
    /// What it did, for people.
    pub summary: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// When the job is due next.
    pub next_run_at: OffsetDateTime,
}

const JOB_COLUMNS: &str = "name, enabled, schedule, next_run_at, run_requested_at, \
     last_started_at, last_finished_at, last_duration_ms, last_outcome, last_summary, \
     last_error, last_node, runs, failures";

fn job_row(row: &AnyRow) -> Result<JobRow, Error> {
    let time = |column: &str| -> Result<Option<OffsetDateTime>, Error> {
        Ok(row.try_get::<Option<i64>, _>(column)?.map(from_micros))
    };
    let last = match (
        time("last_started_at")?,
        row.try_get::<Option<String>, _>("last_node")?,
    ) {
        (Some(started_at), Some(node)) => Some(JobRun {
            node,
            started_at,
            finished_at: time("last_finished_at")?,
            duration_ms: row.try_get("last_duration_ms")?,
            outcome: row
                .try_get::<Option<String>, _>("last_outcome")?
                .unwrap_or_default(),
            summary: row.try_get("last_summary")?,
            error: row.try_get("last_error")?,
        }),
        _ => None,
    };
    Ok(JobRow {
        name: row.try_get("name")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        schedule: row.try_get("schedule")?,
        next_run_at: from_micros(row.try_get("next_run_at")?),
        run_requested_at: time("run_requested_at")?,
        last,
        runs: row.try_get("runs")?,
        failures: row.try_get("failures")?,
    })
}

impl Reader {
    /// Every job, by name.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn jobs(&self) -> Result<Vec<JobRow>, Error> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_row).collect()
    }

    /// Job `name`, if there is one.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn job(&self, name: &str) -> Result<Option<JobRow>, Error> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE name = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_row).transpose()
    }

    /// The setting stored under `key`, as JSON.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`]; [`Error::Corrupt`] for a value that is not
    /// JSON.
    pub async fn setting(&self, key: &str) -> Result<Option<serde_json::Value>, Error> {
        let value: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        Ok(value.map(|v| serde_json::from_str(&v)).transpose()?)
    }
}

impl Store {
    /// Adds the jobs in `jobs` that are not there yet, as `(name, schedule, first run,
    /// enabled)`; those
    /// that are keep their schedule and state.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn ensure_jobs(
        &self,
        jobs: &[(&str, String, OffsetDateTime, bool)],
    ) -> Result<(), Error> {
        for (name, schedule, first, enabled) in jobs {
            sqlx::query(
                "INSERT INTO jobs (name, schedule, next_run_at, enabled) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind((*name).to_owned())
            .bind(schedule.clone())
            .bind(to_micros(*first))
            .bind(flag(*enabled))
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Records that `node` started job `name` at `now`. Only the holder of the job's lease
    /// calls this.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn job_started(
        &self,
        name: &str,
        node: &str,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE jobs SET last_started_at = $1, last_node = $2, last_finished_at = NULL, \
             last_duration_ms = NULL, last_outcome = 'running', last_summary = NULL, \
             last_error = NULL WHERE name = $3",
        )
        .bind(to_micros(now))
        .bind(node.to_owned())
        .bind(name.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records how job `name`'s run ended and when it is due next. A run asked for before it
    /// started is done; one asked for since is still to come.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn job_finished(&self, name: &str, end: &JobEnd) -> Result<(), Error> {
        sqlx::query(
            "UPDATE jobs SET last_finished_at = $1, last_duration_ms = $2, last_outcome = $3, \
             last_summary = $4, last_error = $5, next_run_at = $6, runs = runs + 1, \
             failures = failures + $7, \
             run_requested_at = CASE WHEN run_requested_at <= $9 THEN NULL \
               ELSE run_requested_at END \
             WHERE name = $8",
        )
        .bind(to_micros(end.finished_at))
        .bind(end.duration_ms)
        .bind(if end.succeeded { "succeeded" } else { "failed" })
        .bind(end.summary.clone())
        .bind(end.error.clone())
        .bind(to_micros(end.next_run_at))
        .bind(i64::from(!end.succeeded))
        .bind(name.to_owned())
        .bind(to_micros(end.started_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives up lease `name` if `holder` holds it, so that the next node need not wait for it
    /// to expire.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name.to_owned())
            .bind(holder.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl WriteTx {
    /// Asks for a run of job `name` now. Returns false when there is no such job.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn request_job_run(
        &mut self,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE jobs SET run_requested_at = COALESCE(run_requested_at, $1) WHERE name = $2",
        )
        .bind(to_micros(now))
        .bind(name.to_owned())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Changes job `name`'s schedule, switch and next run. Returns false when there is no
    /// such job.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_job_schedule(
        &mut self,
        name: &str,
        schedule: &str,
        enabled: bool,
        next_run_at: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE jobs SET schedule = $1, enabled = $2, next_run_at = $3 WHERE name = $4",
        )
        .bind(schedule.to_owned())
        .bind(flag(enabled))
        .bind(to_micros(next_run_at))
        .bind(name.to_owned())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The setting stored under `key`, read inside this transaction, so that a change written
    /// back from it cannot overwrite one made in between.
    ///
    /// # Errors
    /// [`Error::Database`]; [`Error::Corrupt`] for a value that is not JSON.
    pub async fn setting(&mut self, key: &str) -> Result<Option<serde_json::Value>, Error> {
        let value: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key.to_owned())
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(value.map(|v| serde_json::from_str(&v)).transpose()?)
    }

    /// Stores `value` under setting `key`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_setting(
        &mut self,
        key: &str,
        value: &serde_json::Value,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
               updated_at = excluded.updated_at",
        )
        .bind(key.to_owned())
        .bind(value.to_string())
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
