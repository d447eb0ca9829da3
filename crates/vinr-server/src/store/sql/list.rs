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
    /// filters (all must match), `created` bounds and a cursor.
    pub(super) fn list<T>(
        &mut self,
        listed: &Listed<T>,
        scope: &Scope,
        filters: &[(&str, &str)],
        query: &ListQuery,
    ) -> Result<Page<T>, ListError> {
        self.list_matching(listed, scope, filters, None, query)
    }

    /// As [`Reader::list`], with one more condition over one more value: `condition` is SQL
    /// in which `{value}` stands for that value's placeholder (it may appear more than once;
    /// `$1` and `$2` are the scope's account and mode).
    pub(super) fn list_matching<T>(
        &mut self,
        listed: &Listed<T>,
        scope: &Scope,
        filters: &[(&str, &str)],
        condition: Option<(&str, &str)>,
        query: &ListQuery,
    ) -> Result<Page<T>, ListError> {
        let mut conditions = "account_id = $1 AND mode = $2".to_owned();
        let mut args: Vec<Value<'_>> =
            vec![Value::from(&scope.account_id), Value::from(scope.mode)];
        for (column, value) in filters {
            args.push(Value::from(*value));
            conditions.push_str(&format!(" AND {column} = ${}", args.len()));
        }
        if let Some((condition, value)) = condition {
            args.push(Value::from(value));
            let placeholder = format!("${}", args.len());
            conditions.push_str(" AND ");
            conditions.push_str(&condition.replace("{value}", &placeholder));
        }
        let cursor_seq = match query.cursor.id() {
            None => None,
            Some(id) => Some(
                self.seq_of(listed.table, scope, id)?
                    .ok_or_else(|| query.cursor.unknown(id))?,
            ),
        };
        self.page(listed, conditions, args, cursor_seq, query)
    }

    /// A newest-first list over a table that belongs to no account (the accounts themselves),
    /// with `created` bounds and a cursor.
    pub(super) fn list_unscoped<T>(
        &mut self,
        listed: &Listed<T>,
        query: &ListQuery,
    ) -> Result<Page<T>, ListError> {
        let cursor_seq = match query.cursor.id() {
            None => None,
            Some(id) => {
                let sql = format!("SELECT seq FROM {} WHERE id = $1", listed.table);
                let row = self
                    .conn
                    .query(&sql, &[Value::from(id)])?
                    .into_iter()
                    .next();
                match row {
                    Some(mut row) => Some(row.int()?),
                    None => return Err(query.cursor.unknown(id)),
                }
            }
        };
        self.page(listed, "1 = 1".to_owned(), Vec::new(), cursor_seq, query)
    }

    /// The page of `listed` whose rows meet `conditions` (over `args`), after or before the row
    /// numbered `cursor_seq`. Fetches one row more than asked to learn `has_more` without a
    /// count.
    fn page<T>(
        &mut self,
        listed: &Listed<T>,
        mut conditions: String,
        mut args: Vec<Value<'_>>,
        cursor_seq: Option<i64>,
        query: &ListQuery,
    ) -> Result<Page<T>, ListError> {
        let Listed {
            table,
            columns,
            read,
        } = *listed;
        if let Some(gte) = query.created_gte {
            args.push(Value::from(gte));
            conditions.push_str(&format!(" AND created_at >= ${}", args.len()));
        }
        if let Some(lt) = query.created_lt {
            args.push(Value::from(lt));
            conditions.push_str(&format!(" AND created_at < ${}", args.len()));
        }
        let older = !matches!(query.cursor, Cursor::EndingBefore(_));
        if let Some(seq) = cursor_seq {
            args.push(Value::Int(seq));
            let op = if older { "<" } else { ">" };
            conditions.push_str(&format!(" AND seq {op} ${}", args.len()));
        }
        let order = if older { "DESC" } else { "ASC" };
        args.push(Value::from(query.limit + 1));
        let sql = format!(
            "SELECT {columns} FROM {table} WHERE {conditions} ORDER BY seq {order} LIMIT ${}",
            args.len()
        );
        let mut items = super::rows(self.conn.query(&sql, &args)?, read)?;
        let has_more = items.len() > query.limit as usize;
        items.truncate(query.limit as usize);
        if !older {
            items.reverse();
        }
        Ok(Page { items, has_more })
    }
}
