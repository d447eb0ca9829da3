//! Newest-first lists with cursors, for every listable table.

use super::{Reader, Row, Value};
use crate::store::{Cursor, ListError, ListQuery, Page, Scope, StoreError};

/// A listable table: its name, its columns, and its row reader.
pub struct Listed<T> {
    pub table: &'static str,
    pub columns: &'static str,
    pub read: fn(&mut Row) -> Result<T, StoreError>,
}

impl Reader<'_> {
    /// The `seq` of an object of `scope` in `table` (a list cursor). By id alone, then the
    /// scope check in code: with `account_id = $2` in the WHERE clause PostgreSQL's generic
    /// plan walked the account's index and filtered by id (measured: 4.6 ms instead of 0.1 ms
    /// at 15 000 payments).
    fn seq_of(&mut self, table: &str, scope: &Scope, id: &str) -> Result<Option<i64>, StoreError> {
        let sql = format!("SELECT seq, account_id, mode FROM {table} WHERE id = $1");
        let Some(mut row) = self
            .conn
            .query(&sql, &[Value::from(id)])?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let seq = row.int()?;
        Ok((row.scope()? == *scope).then_some(seq))
    }

    /// Runs a newest-first list query over `listed` confined to `scope`, with extra equality
    /// filters (all must match), `created` bounds and a cursor. Fetches one row more than
    /// asked to learn `has_more` without a count.
    pub(super) fn list<T>(
        &mut self,
        listed: &Listed<T>,
        scope: &Scope,
        filters: &[(&str, &str)],
        query: &ListQuery,
    ) -> Result<Page<T>, ListError> {
        let Listed {
            table,
            columns,
            read,
        } = *listed;
        let mut sql = format!("SELECT {columns} FROM {table} WHERE account_id = $1 AND mode = $2");
        let mut args: Vec<Value<'_>> =
            vec![Value::from(&scope.account_id), Value::from(scope.mode)];
        for (column, value) in filters {
            args.push(Value::from(*value));
            sql.push_str(&format!(" AND {column} = ${}", args.len()));
        }
        if let Some(gte) = query.created_gte {
            args.push(Value::from(gte));
            sql.push_str(&format!(" AND created_at >= ${}", args.len()));
        }
        if let Some(lt) = query.created_lt {
            args.push(Value::from(lt));
            sql.push_str(&format!(" AND created_at < ${}", args.len()));
        }
        let (cursor_id, older) = match &query.cursor {
            Cursor::None => (None, true),
            Cursor::StartingAfter(id) => (Some(id), true),
            Cursor::EndingBefore(id) => (Some(id), false),
        };
        if let Some(id) = cursor_id {
            let seq = self
                .seq_of(table, scope, id)?
                .ok_or_else(|| query.cursor.unknown(id))?;
            args.push(Value::Int(seq));
            let op = if older { "<" } else { ">" };
            sql.push_str(&format!(" AND seq {op} ${}", args.len()));
        }
        let order = if older { "DESC" } else { "ASC" };
        args.push(Value::from(query.limit + 1));
        sql.push_str(&format!(" ORDER BY seq {order} LIMIT ${}", args.len()));
        let mut items = super::rows(self.conn.query(&sql, &args)?, read)?;
        let has_more = items.len() > query.limit as usize;
        items.truncate(query.limit as usize);
        if !older {
            items.reverse();
        }
        Ok(Page { items, has_more })
    }
}
