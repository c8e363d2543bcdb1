//! The one way to read a series' points: its sealed chunks, then its rows in `samples`,
//! then its head (`head.rs`). By the sealing invariant (`sealing.rs`) every chunk point
//! is older than every row, and the writer puts a sample into the head only when it is
//! newer than all its series' chunks and rows, so the three parts concatenate in time
//! order: the latest point is in the head or the rows whenever they have one in range,
//! and the first is in the chunks whenever they have one. Chunk points older than the
//! retention cut are left out (retention drops whole chunks; the one straddling the cut
//! is trimmed here).

use crate::head::{Head, Pending};
use crate::rate::Point;
use crate::sealing::{in_chunk, retention_cut};
use crate::{Store, StoreError, chunk, sql};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// Where a read finds points: the connection (chunks and rows) and the head, as one
/// snapshot sees them.
#[derive(Clone, Copy)]
pub(crate) struct Source<'a> {
    pub conn: &'a Connection,
    head: &'a Head,
    /// The head epoch the read's snapshot holds; `None` for the writer inside its own
    /// transaction (nobody else takes samples out of the head meanwhile).
    epoch: Option<i64>,
    /// The writer's own samples, not committed yet.
    pending: Option<&'a Pending>,
}

impl<'a> Source<'a> {
    /// The writer's view inside its transaction: its uncommitted samples included.
    pub(crate) fn writer(conn: &'a Connection, head: &'a Head, pending: &'a Pending) -> Self {
        Source {
            conn,
            head,
            epoch: None,
            pending: Some(pending),
        }
    }

    /// Series `id`'s head points in `[from, to]`, oldest first.
    pub(crate) fn head_points(
        &self,
        id: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<Point>, StoreError> {
        let in_range = |p: &&Point| p.0 >= from && p.0 <= to;
        let mut out = self.head.read(self.epoch, |series| {
            series
                .get(&id)
                .map(|points| {
                    let start = points.partition_point(|p| p.0 < from);
                    points[start..]
                        .iter()
                        .take_while(|p| p.0 <= to)
                        .copied()
                        .collect()
                })
                .unwrap_or_default()
        })?;
        if let Some(pending) = self.pending {
            pending.with_series(id, |mine| {
                for &(ts, v) in mine.iter().filter(in_range) {
                    crate::head::insert(&mut out, ts, v);
                }
            });
        }
        Ok(out)
    }

    /// Series `id`'s last head point in `[from, to]` (a series' head is a quarter of
    /// an hour: copying it is cheap).
    fn head_last(&self, id: i64, from: i64, to: i64) -> Result<Option<Point>, StoreError> {
        Ok(self.head_points(id, from, to)?.last().copied())
    }

    /// Series `id`'s first head point in `[from, to]`.
    fn head_first(&self, id: i64, from: i64, to: i64) -> Result<Option<Point>, StoreError> {
        Ok(self.head_points(id, from, to)?.first().copied())
    }

    /// Series `id`'s last two points, newest first (never sealed: see `sealing.rs`).
    pub(crate) fn last_two(&self, id: i64) -> Result<[Option<Point>; 2], StoreError> {
        let head = self.head_last_two(id)?;
        if head[1].is_some() {
            return Ok(head);
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT ts, value FROM samples WHERE series_id = ?1 ORDER BY ts DESC LIMIT 2",
            )
            .map_err(sql("prepare latest samples"))?;
        let rows = stmt
            .query_map([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?)))
            .map_err(sql("read latest samples"))?;
        let mut out = head;
        for row in rows {
            let point = row.map_err(sql("read latest sample"))?;
            // Rows are older than the head: they fill what it lacks.
            if out[0].is_none() {
                out[0] = Some(point);
            } else if out[1].is_none() {
                out[1] = Some(point);
            }
        }
        Ok(out)
    }

    /// How many points the head holds, and its oldest and newest time.
    pub(crate) fn head_extent(&self) -> Result<(i64, Option<i64>, Option<i64>), StoreError> {
        self.head.read(self.epoch, crate::head::extent)
    }

    /// The head's last two points of series `id`, newest first.
    fn head_last_two(&self, id: i64) -> Result<[Option<Point>; 2], StoreError> {
        let points = self.head_points(id, i64::MIN, i64::MAX)?;
        let mut newest = points.iter().rev().copied();
        Ok([newest.next(), newest.next()])
    }
}

/// One series' chunk points, with the series' host and labels (JSON).
pub(crate) struct ChunkSeries {
    pub id: i64,
    pub host: String,
    pub labels: String,
    pub points: Vec<Point>,
}

/// The points of one chunk in `[from, to]`, also at or after `cut`.
pub(crate) fn points_in(
    id: i64,
    start: i64,
    data: &[u8],
    from: i64,
    to: i64,
    cut: i64,
) -> Result<impl Iterator<Item = Point>, StoreError> {
    let decoded = chunk::decode(data).map_err(|e| in_chunk(id, start, e))?;
    let from = from.max(cut);
    Ok(decoded
        .times
        .into_iter()
        .zip(decoded.values)
        .filter(move |(t, _)| *t >= from && *t <= to))
}

/// Column `i` of a chunk row: the chunk's bytes, borrowed from the row.
fn blob<'r>(r: &'r Row<'_>, i: usize) -> Result<&'r [u8], StoreError> {
    r.get_ref(i)
        .and_then(|v| v.as_blob().map_err(Into::into))
        .map_err(sql("read chunk data"))
}

/// The retention cut, read once a call and only when a chunk was found.
fn cut_once(conn: &Connection, cut: &mut Option<i64>) -> Result<i64, StoreError> {
    match cut {
        Some(c) => Ok(*c),
        None => {
            let c = retention_cut(conn)?;
            *cut = Some(c);
            Ok(c)
        }
    }
}

/// Every point of series `id` in `[from, to]`, oldest first.
pub(crate) fn points_of(
    src: &Source<'_>,
    id: i64,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Point>, StoreError> {
    let mut out = chunk_points(src.conn, id, from_ms, to_ms)?;
    out.extend(row_points(src.conn, id, from_ms, to_ms)?);
    out.extend(src.head_points(id, from_ms, to_ms)?);
    Ok(out)
}

/// Series `id`'s rows of `samples` in `[from, to]`, oldest first.
pub(crate) fn row_points(
    conn: &Connection,
    id: i64,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Point>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT ts, value FROM samples WHERE series_id = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts",
        )
        .map_err(sql("prepare range read"))?;
    let rows = stmt
        .query_map(params![id, from_ms, to_ms], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(sql("read range"))?;
    rows.collect::<Result<_, _>>()
        .map_err(sql("read sample row"))
}

/// The points of series `id` in `[from, to]` sealed in chunks, oldest first.
pub(crate) fn chunk_points(
    conn: &Connection,
    id: i64,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Point>, StoreError> {
    let mut out = Vec::new();
    let mut cut = None;
    each_chunk(conn, id, from_ms, to_ms, |start, _, data| {
        let c = cut_once(conn, &mut cut)?;
        out.extend(points_in(id, start, data, from_ms, to_ms, c)?);
        Ok(())
    })?;
    Ok(out)
}

/// Calls `each(start, end, data)` for every chunk of series `id` overlapping `[from, to]`,
/// oldest first.
pub(crate) fn each_chunk(
    conn: &Connection,
    id: i64,
    from_ms: i64,
    to_ms: i64,
    mut each: impl FnMut(i64, i64, &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT start_ts, end_ts, data FROM chunks
             WHERE series_id = ?1 AND end_ts >= ?2 AND start_ts <= ?3 ORDER BY end_ts",
        )
        .map_err(sql("prepare chunk read"))?;
    let mut rows = stmt
        .query(params![id, from_ms, to_ms])
        .map_err(sql("read chunks"))?;
    while let Some(r) = rows.next().map_err(sql("read chunk row"))? {
        let start: i64 = r.get(0).map_err(sql("read chunk start"))?;
        let end: i64 = r.get(1).map_err(sql("read chunk end"))?;
        let data = blob(r, 2)?;
        each(start, end, data)?;
    }
    Ok(())
}

/// The last point of series `id` in `[from, to]`.
pub(crate) fn last_point(
    src: &Source<'_>,
    id: i64,
    from_ms: i64,
    to_ms: i64,
) -> Result<Option<Point>, StoreError> {
    if let Some(p) = src.head_last(id, from_ms, to_ms)? {
        return Ok(Some(p));
    }
    let conn = src.conn;
    let row: Option<Point> = conn
            .prepare_cached("SELECT ts, value FROM samples WHERE series_id = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts DESC LIMIT 1")
            .map_err(sql("prepare last point"))?
            .query_row(params![id, from_ms, to_ms], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(sql("read last point"))?;
    if row.is_some() {
        return Ok(row);
    }
    let chunk: Option<(i64, Vec<u8>)> = conn
            .prepare_cached(
                "SELECT start_ts, data FROM chunks
                 WHERE series_id = ?1 AND end_ts >= ?2 AND start_ts <= ?3 ORDER BY end_ts DESC LIMIT 1",
            )
            .map_err(sql("prepare last chunk"))?
            .query_row(params![id, from_ms, to_ms], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(sql("read last chunk"))?;
    let Some((start, data)) = chunk else {
        return Ok(None);
    };
    let cut = retention_cut(conn)?;
    Ok(points_in(id, start, &data, from_ms, to_ms, cut)?.last())
}

/// The first point of series `id` in `[from, to]`.
pub(crate) fn first_point(
    src: &Source<'_>,
    id: i64,
    from_ms: i64,
    to_ms: i64,
) -> Result<Option<Point>, StoreError> {
    let conn = src.conn;
    let cut = retention_cut(conn)?;
    let chunk: Option<(i64, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT start_ts, data FROM chunks
                 WHERE series_id = ?1 AND end_ts >= ?2 AND start_ts <= ?3 ORDER BY end_ts LIMIT 1",
        )
        .map_err(sql("prepare first chunk"))?
        .query_row(params![id, from_ms.max(cut), to_ms], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(sql("read first chunk"))?;
    if let Some((start, data)) = chunk
        && let Some(p) = points_in(id, start, &data, from_ms, to_ms, cut)?.next()
    {
        return Ok(Some(p));
    }
    let row: Option<Point> = conn
            .prepare_cached("SELECT ts, value FROM samples WHERE series_id = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts LIMIT 1")
            .map_err(sql("prepare first point"))?
            .query_row(params![id, from_ms, to_ms], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(sql("read first point"))?;
    match row {
        Some(p) => Ok(Some(p)),
        None => src.head_first(id, from_ms, to_ms),
    }
}

impl Store {
    /// Where this connection's reads find points: its head brought up to the read's
    /// snapshot (once per snapshot; before every read outside one).
    pub(crate) fn source(&self) -> Result<Source<'_>, StoreError> {
        let in_snapshot = !self.conn.is_autocommit();
        let epoch = match self.read_epoch.get() {
            Some(e) if in_snapshot => Some(e),
            _ if in_snapshot => {
                let e = self.head.sync(&self.conn)?;
                self.read_epoch.set(Some(e));
                Some(e)
            }
            _ => {
                // Each statement its own snapshot: the head may move between the
                // position read and the check; look again.
                let mut attempt = 0;
                loop {
                    match self.head.sync(&self.conn) {
                        Err(StoreError::HeadMoved) if attempt < 8 => attempt += 1,
                        other => break other.map(|_| ())?,
                    }
                }
                None
            }
        };
        Ok(Source {
            conn: &self.conn,
            head: &self.head,
            epoch,
            pending: None,
        })
    }

    /// Every point of series `id` in `[from, to]`, oldest first.
    pub(crate) fn points_of(
        &self,
        id: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Point>, StoreError> {
        points_of(&self.source()?, id, from_ms, to_ms)
    }

    /// The last point of series `id` in `[from, to]`.
    pub(crate) fn last_point(
        &self,
        id: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Option<Point>, StoreError> {
        last_point(&self.source()?, id, from_ms, to_ms)
    }

    /// The chunk points in `[from, to]` of every series named `name` (of `host` only,
    /// when given), series by series.
    pub(crate) fn chunk_points_by_name(
        &self,
        name: &str,
        host: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<ChunkSeries>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(if host.is_some() {
                "SELECT s.id, s.host, s.labels, c.start_ts, c.data FROM series s
                 JOIN chunks c ON c.series_id = s.id AND c.end_ts >= ?2 AND c.start_ts <= ?3
                 WHERE s.name = ?1 AND s.host = ?4"
            } else {
                "SELECT s.id, s.host, s.labels, c.start_ts, c.data FROM series s
                 JOIN chunks c ON c.series_id = s.id AND c.end_ts >= ?2 AND c.start_ts <= ?3
                 WHERE s.name = ?1 AND ?4 IS NULL"
            })
            .map_err(sql("prepare chunks by name"))?;
        let mut rows = stmt
            .query(params![name, from_ms, to_ms, host])
            .map_err(sql("read chunks by name"))?;
        let mut out: Vec<ChunkSeries> = Vec::new();
        let mut cut = None;
        // A nested loop over the chunks' key: each series' chunks come together, oldest
        // first.
        while let Some(r) = rows.next().map_err(sql("read chunk by name"))? {
            let id: i64 = r.get(0).map_err(sql("read series id"))?;
            if out.last().map(|s| s.id) != Some(id) {
                out.push(ChunkSeries {
                    id,
                    host: r.get(1).map_err(sql("read series host"))?,
                    labels: r.get(2).map_err(sql("read series labels"))?,
                    points: Vec::new(),
                });
            }
            let start: i64 = r.get(3).map_err(sql("read chunk start"))?;
            let data = blob(r, 4)?;
            let c = cut_once(&self.conn, &mut cut)?;
            if let Some(series) = out.last_mut() {
                series
                    .points
                    .extend(points_in(id, start, data, from_ms, to_ms, c)?);
            }
        }
        Ok(out)
    }
}
