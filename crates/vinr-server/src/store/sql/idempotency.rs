//! Idempotency keys and their stored answers (SPEC §2).

use vinr_domain::UnixMillis;

use super::accounts::lock_key;
use super::{args, corrupt, first, Changed, Deferred, Dialect, Query, Row, Run, Sql, Tx, Value};
use crate::store::{DueOn, IdempotencyScope, StoreError, StoredResponse};

/// A stored answer: its request hash, its status, and its body — the referenced event's
/// snapshot when there is one (TEXT), else the body stored with the key (BLOB/BYTEA).
fn stored_response(row: &mut Row) -> Result<StoredResponse, StoreError> {
    let request_hash = row
        .bytes()?
        .try_into()
        .map_err(|_| corrupt("request hash", "of wrong length"))?;
    let status = row.int()?;
    let status_code = u16::try_from(status).map_err(|_| corrupt("status", &status.to_string()))?;
    let event_data = row.opt_bytes()?;
    let stored_body = row.opt_bytes()?;
    Ok(StoredResponse {
        request_hash,
        status_code,
        body: event_data.or(stored_body).unwrap_or_default(),
    })
}

/// How to store an idempotent answer: as a reference to the flow's last event when the answer
/// is that event's snapshot (the common case), else as the body itself.
fn answer_reference<'a>(
    last_event: Option<&'a (String, String)>,
    body: &'a [u8],
) -> (Option<&'a str>, &'a [u8]) {
    match last_event {
        Some((event_id, data)) if data.as_bytes() == body => (Some(event_id.as_str()), &[]),
        _ => (None, body),
    }
}

/// The stored answer for a key (with the referenced event's snapshot).
static FIND: Sql = Sql::new(
    "SELECT k.request_hash, k.status_code, e.data, k.response_body
     FROM idempotency_keys k LEFT JOIN events e ON e.id = k.response_event_id
     WHERE k.account_id = $1 AND k.mode = $2 AND k.method = $3 AND k.path = $4
       AND k.key = $5",
);

impl Tx<'_> {
    /// Claims `key` for the rest of this transaction and answers what is stored for it;
    /// `None` when another transaction (on any node) holds it, i.e. the first request with
    /// this key is still running. On PostgreSQL an advisory lock keyed by 64 bits of the
    /// scope's SHA-256 (a collision only makes an unrelated request retry, never mixes
    /// answers), sent in one round trip with the lookup of the stored answer, which runs after
    /// the lock is taken (a statement of its own: its snapshot sees every answer committed
    /// before). SQLite's single writer runs one flow at a time, and the server's in-memory set
    /// already answered `in use` for a running request.
    pub fn claim_idempotency_key(
        &mut self,
        key: &IdempotencyScope,
    ) -> Result<Option<Option<StoredResponse>>, StoreError> {
        static TRY_LOCK: Sql = Sql::new("SELECT CAST(pg_try_advisory_xact_lock($1) AS INT)");
        let find = FIND.text(self.conn.dialect());
        let find_params = args![&key.account_id, key.mode, key.method, &key.path, &key.key];
        if self.conn.dialect() == Dialect::Sqlite {
            let found = self.conn.query(find, &find_params)?.into_iter().next();
            return Ok(Some(first(found, stored_response)?));
        }
        let parts = [
            key.account_id.as_str(),
            key.mode.as_str(),
            key.method,
            key.path.as_str(),
            key.key.as_str(),
        ];
        let lock_params = args![lock_key(&parts)];
        let mut answers = self
            .conn
            .query_each(&[
                Query {
                    sql: TRY_LOCK.text(Dialect::Postgres),
                    params: &lock_params,
                },
                Query {
                    sql: find,
                    params: &find_params,
                },
            ])?
            .into_iter();
        let locked = first(
            answers.next().and_then(|rows| rows.into_iter().next()),
            Row::int,
        )?;
        if locked != Some(1) {
            return Ok(None);
        }
        let found = answers.next().and_then(|rows| rows.into_iter().next());
        Ok(Some(first(found, stored_response)?))
    }

    /// The answer stored for `key`, without claiming it.
    pub fn find_idempotent_response(
        &mut self,
        key: &IdempotencyScope,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let found = self.query_opt(
            &FIND,
            &args![&key.account_id, key.mode, key.method, &key.path, &key.key],
        )?;
        first(found, stored_response)
    }

    pub fn save_idempotent_response(
        &mut self,
        key: &IdempotencyScope,
        response: &StoredResponse,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        static SAVE: Sql = Sql::new(
            "INSERT INTO idempotency_keys (account_id, mode, method, path, key, request_hash,
                 status_code, response_body, response_event_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        );
        let (event_id, body) = answer_reference(self.last_event.as_ref(), &response.body);
        let params = args![
            &key.account_id,
            key.mode,
            key.method,
            &key.path,
            &key.key,
            &response.request_hash[..],
            response.status_code,
            body,
            event_id,
            now,
        ];
        // `self.conn` directly: the parameters borrow `self.last_event`.
        let sql = SAVE.text(self.conn.dialect());
        let statement = Deferred {
            sql,
            params: &params,
            changed: Changed::Exactly(1),
        };
        self.conn.defer(statement).map(drop)
    }

    /// Deletes at most `limit` idempotency keys created before `before`; answers how many.
    pub fn prune_idempotency_keys(
        &mut self,
        on: &DueOn,
        before: UnixMillis,
        limit: usize,
    ) -> Result<usize, StoreError> {
        // The table has no `seq`: SQLite names rows by their primary key (WITHOUT ROWID),
        // PostgreSQL by `ctid`, skipping rows another node is pruning.
        let which = on.condition(3);
        let sql = match self.conn.dialect() {
            Dialect::Sqlite => format!(
                "DELETE FROM idempotency_keys WHERE (account_id, mode, method, path, key) IN (
                     SELECT account_id, mode, method, path, key FROM idempotency_keys
                     WHERE created_at < $1 AND {which} LIMIT $2)"
            ),
            Dialect::Postgres => format!(
                "DELETE FROM idempotency_keys WHERE ctid IN (
                     SELECT ctid FROM idempotency_keys WHERE created_at < $1 AND {which}
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"
            ),
        };
        let mut params = args![before, limit].to_vec();
        params.extend(on.account().map(Value::from));
        let deleted = self.conn.execute(&sql, &params)?;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::answer_reference;

    #[test]
    fn answers_equal_to_the_last_event_become_references() {
        let event = ("evt_1".to_owned(), "{\"id\":\"pay_1\"}".to_owned());
        assert_eq!(
            answer_reference(Some(&event), b"{\"id\":\"pay_1\"}"),
            (Some("evt_1"), &b""[..])
        );
        assert_eq!(
            answer_reference(Some(&event), b"{\"id\":\"pay_2\"}"),
            (None, &b"{\"id\":\"pay_2\"}"[..])
        );
        assert_eq!(answer_reference(None, b"{}"), (None, &b"{}"[..]));
    }
}
