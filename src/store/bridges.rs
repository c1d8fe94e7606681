//! Bridges (migration 8): external sources published into a class. The row is
//! the configuration only; live status lives in `crate::bridges`.
//!
//! Invariants: a bridge belongs to one class and goes with it (ON DELETE
//! CASCADE); a stream key is unique across bridges; creating and deleting write
//! an audit row in the same transaction.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::{Store, StoreError, new_id, unix_now, unix_now_ms};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BridgeRow {
    pub id: String,
    pub class_id: String,
    pub name: String,
    /// `main` or `classroom`.
    pub role: String,
    pub classroom_id: Option<String>,
    /// The video's source tag: camera, board or screen.
    pub source: String,
    /// Whether the source's audio is published (as the role's mic).
    pub audio: bool,
    /// `rtsp`, `srt` or `rtmp`.
    pub kind: String,
    /// RTSP or SRT URL (none for RTMP).
    pub url: Option<String>,
    /// RTSP lower transport: `tcp` or `udp`.
    pub transport: String,
    /// RTMP stream key (none for RTSP and SRT).
    pub stream_key: Option<String>,
    pub created_at: i64,
}

const COLUMNS: &str = "id, class_id, name, role, classroom_id, source, audio, kind, url, transport, stream_key, created_at";

fn row(r: &Row) -> rusqlite::Result<BridgeRow> {
    Ok(BridgeRow {
        id: r.get(0)?,
        class_id: r.get(1)?,
        name: r.get(2)?,
        role: r.get(3)?,
        classroom_id: r.get(4)?,
        source: r.get(5)?,
        audio: r.get(6)?,
        kind: r.get(7)?,
        url: r.get(8)?,
        transport: r.get(9)?,
        stream_key: r.get(10)?,
        created_at: r.get(11)?,
    })
}

impl Store {
    /// Stores a checked bridge; `b.id` and `b.created_at` are set here.
    pub fn create_bridge(&self, mut b: BridgeRow) -> Result<BridgeRow, StoreError> {
        b.id = new_id('b');
        b.created_at = unix_now();
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                &format!("INSERT INTO bridges ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                params![b.id, b.class_id, b.name, b.role, b.classroom_id, b.source, b.audio, b.kind, b.url, b.transport, b.stream_key, b.created_at],
            )?;
            audit(&tx, "create", &b.id, &format!("{} {} into {} as {}/{}", b.kind, b.name, b.class_id, b.role, b.source))?;
            tx.commit()
        })?;
        Ok(b)
    }

    pub fn bridges(&self) -> Result<Vec<BridgeRow>, StoreError> {
        self.with(|c| c.prepare(&format!("SELECT {COLUMNS} FROM bridges ORDER BY created_at, id"))?.query_map([], row)?.collect())
    }

    pub fn bridge(&self, id: &str) -> Result<Option<BridgeRow>, StoreError> {
        self.with(|c| c.query_row(&format!("SELECT {COLUMNS} FROM bridges WHERE id = ?1"), [id], row).optional())
    }

    /// Whether a bridge already uses this stream key.
    pub fn stream_key_taken(&self, key: &str) -> Result<bool, StoreError> {
        self.with(|c| c.query_row("SELECT 1 FROM bridges WHERE stream_key = ?1", [key], |_| Ok(())).optional()).map(|r| r.is_some())
    }

    /// Deletes a bridge; false if there was none.
    pub fn delete_bridge(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let n = tx.execute("DELETE FROM bridges WHERE id = ?1", [id])?;
            if n > 0 {
                audit(&tx, "delete", id, "bridge deleted")?;
            }
            tx.commit()?;
            Ok(n > 0)
        })
    }
}

fn audit(c: &Connection, action: &str, id: &str, summary: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO audit_log (at_ms, action, entity, entity_id, summary) VALUES (?1, ?2, 'bridge', ?3, ?4)",
        params![unix_now_ms(), action, id, summary],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(class_id: &str, key: Option<&str>) -> BridgeRow {
        BridgeRow {
            id: String::new(),
            class_id: class_id.into(),
            name: "录播 board".into(),
            role: "main".into(),
            classroom_id: None,
            source: "board".into(),
            audio: true,
            kind: if key.is_some() { "rtmp" } else { "rtsp" }.into(),
            url: key.is_none().then(|| "rtsp://127.0.0.1:8554/test".into()),
            transport: "tcp".into(),
            stream_key: key.map(String::from),
            created_at: 0,
        }
    }

    #[test]
    fn bridges_round_trip_and_go_with_their_class() {
        let store = Store::open_in_memory().unwrap();
        let class = store.create_class("Maths", "Ms Li", false).unwrap();
        let a = store.create_bridge(sample(&class.id, None)).unwrap();
        let b = store.create_bridge(sample(&class.id, Some("k1"))).unwrap();
        assert_eq!(store.bridge(&a.id).unwrap(), Some(a.clone()));
        assert_eq!(store.bridges().unwrap().len(), 2);
        assert!(store.stream_key_taken("k1").unwrap());
        assert!(store.create_bridge(sample(&class.id, Some("k1"))).is_err(), "stream keys are unique");
        assert!(store.delete_bridge(&b.id).unwrap());
        assert!(!store.delete_bridge(&b.id).unwrap());
        store.delete_class(&class.id).unwrap();
        assert!(store.bridges().unwrap().is_empty());
    }
}
