//! Events.

use vinr_domain::UnixMillis;

use super::{args, first, render, Changed, Listed, Reader, Row, Run, Sql, Tx, Value};
use crate::store::{DueOn, EventRecord, ListError, ListQuery, Page, Scope, StoreError};

pub const COLUMNS: &str = "id, account_id, mode, type, object_id, data, created_at";

/// The row reader: the columns of [`COLUMNS`], in order.
pub(super) fn event(row: &mut Row) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        id: row.text()?,
        scope: row.scope()?,
        kind: row.text()?,
        object_id: row.text()?,
        data: row.text()?,
        created_at: row.at()?,
    })
}

const EVENTS: Listed<EventRecord> = Listed {
    table: "events",
    columns: COLUMNS,
    read: event,
};

impl Tx<'_> {
    pub fn insert_event(&mut self, e: &EventRecord) -> Result<(), StoreError> {
        static INSERT: Sql = Sql::new(
            "INSERT INTO events (id, account_id, mode, type, object_id, data, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        );
        self.defer(
            &INSERT,
            &args![
                &e.id,
                &e.scope.account_id,
                e.scope.mode,
                &e.kind,
                &e.object_id,
                &e.data,
                e.created_at,
            ],
            Changed::Exactly(1),
        )?;
        self.last_event = Some((e.id.clone(), e.data.clone()));
        Ok(())
    }

    /// Deletes at most `limit` events created before `before`; answers how many (`SKIP
    /// LOCKED`: nodes pruning at the same time take disjoint rows).
    pub fn prune_events(
        &mut self,
        on: &DueOn,
        before: UnixMillis,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let sql = render(
            &format!(
                "DELETE FROM events WHERE seq IN (
                     SELECT seq FROM events WHERE created_at < $1 AND {}
                     LIMIT $2{{skip_locked}})",
                on.condition(3)
            ),
            self.conn.dialect(),
        );
        let mut params = args![before, limit].to_vec();
        params.extend(on.account().map(Value::from));
        let deleted = self.conn.execute(&sql, &params)?;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    }
}

impl Reader<'_> {
    pub fn get_event(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        static GET: Sql = Sql::new("SELECT {event_columns} FROM events WHERE id = $1");
        let found = first(self.query_opt(&GET, &args![id])?, event)?;
        Ok(found.filter(|event| &event.scope == scope))
    }

    /// The events of `scope`, newest first; only those of one type, and only those about one
    /// payment (the payment itself, its refunds and its disputes: a payment's timeline), when
    /// asked.
    pub fn list_events(
        &mut self,
        scope: &Scope,
        kind: Option<&str>,
        payment: Option<&str>,
        query: &ListQuery,
    ) -> Result<Page<EventRecord>, ListError> {
        // By `events_object`; the refunds and disputes by their `*_by_payment` indexes.
        const ABOUT_PAYMENT: &str = "(object_id = {value}
             OR object_id IN (SELECT id FROM refunds
                 WHERE account_id = $1 AND mode = $2 AND payment_id = {value})
             OR object_id IN (SELECT id FROM disputes
                 WHERE account_id = $1 AND mode = $2 AND payment_id = {value}))";
        let filters: Vec<_> = kind.map(|kind| ("type", kind)).into_iter().collect();
        let condition = payment.map(|payment| (ABOUT_PAYMENT, payment));
        self.list_matching(&EVENTS, scope, &filters, condition, query)
    }
}
