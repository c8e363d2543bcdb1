//! The one way to read a series' points: its sealed chunks, then its rows in `samples`.
//! By the sealing invariant (`sealing.rs`) every chunk point is older than every row, so
//! the two parts concatenate in time order, the latest point is in `samples` whenever
//! `samples` has one in range, and the first is in the chunks whenever they have one.
//! Chunk points older than the retention cut are left out (retention drops whole
//! chunks; the one straddling the cut is trimmed here).

use crate::rate::Point;
use crate::sealing::{in_chunk, retention_cut};
use crate::{Store, StoreError, chunk, sql};
use rusqlite::{Connection, OptionalExtension, Row, params};

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
    conn: &Connection,
    id: i64,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Point>, StoreError> {
    let mut out = chunk_points(conn, id, from_ms, to_ms)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT ts, value FROM samples WHERE series_id = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts",
        )
        .map_err(sql("prepare range read"))?;
    let rows = stmt
        .query_map(params![id, from_ms, to_ms], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(sql("read range"))?;
    for row in rows {
        out.push(row.map_err(sql("read sample row"))?);
    }
    Ok(out)
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
    conn: &Connection,
    id: i64,
    from_ms: i64,
    to_ms: i64,
) -> Result<Option<Point>, StoreError> {
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
    conn: &Connection,
    id: i64,
    from_ms: i64,
    to_ms: i64,
) -> Result<Option<Point>, StoreError> {
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
    conn
            .prepare_cached("SELECT ts, value FROM samples WHERE series_id = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts LIMIT 1")
            .map_err(sql("prepare first point"))?
            .query_row(params![id, from_ms, to_ms], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(sql("read first point"))
}

impl Store {
    /// Every point of series `id` in `[from, to]`, oldest first.
    pub(crate) fn points_of(
        &self,
        id: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Point>, StoreError> {
        points_of(&self.conn, id, from_ms, to_ms)
    }

    /// The last point of series `id` in `[from, to]`.
    pub(crate) fn last_point(
        &self,
        id: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Option<Point>, StoreError> {
        last_point(&self.conn, id, from_ms, to_ms)
    }

    /// The first point of series `id` in `[from, to]`.
    pub(crate) fn first_point(
        &self,
        id: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Option<Point>, StoreError> {
        first_point(&self.conn, id, from_ms, to_ms)
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

    /// The last chunk point in `[from, to]` of every series named `name` (of `host`).
    pub(crate) fn chunk_last_by_name(
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
                 JOIN chunks c ON c.series_id = s.id AND c.end_ts =
                     (SELECT max(end_ts) FROM chunks WHERE series_id = s.id AND end_ts >= ?2 AND start_ts <= ?3)
                 WHERE s.name = ?1 AND s.host = ?4"
            } else {
                "SELECT s.id, s.host, s.labels, c.start_ts, c.data FROM series s
                 JOIN chunks c ON c.series_id = s.id AND c.end_ts =
                     (SELECT max(end_ts) FROM chunks WHERE series_id = s.id AND end_ts >= ?2 AND start_ts <= ?3)
                 WHERE s.name = ?1 AND ?4 IS NULL"
            })
            .map_err(sql("prepare last chunks by name"))?;
        let mut rows = stmt
            .query(params![name, from_ms, to_ms, host])
            .map_err(sql("read last chunks by name"))?;
        let mut out = Vec::new();
        let mut cut = None;
        while let Some(r) = rows.next().map_err(sql("read last chunk by name"))? {
            let id: i64 = r.get(0).map_err(sql("read series id"))?;
            let start: i64 = r.get(3).map_err(sql("read chunk start"))?;
            let data = blob(r, 4)?;
            let c = cut_once(&self.conn, &mut cut)?;
            if let Some(last) = points_in(id, start, data, from_ms, to_ms, c)?.last() {
                out.push(ChunkSeries {
                    id,
                    host: r.get(1).map_err(sql("read series host"))?,
                    labels: r.get(2).map_err(sql("read series labels"))?,
                    points: vec![last],
                });
            }
        }
        Ok(out)
    }
}
