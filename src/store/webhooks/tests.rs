//! Store tests of webhooks: hooks and their audit rows, subscriptions, claiming with
//! leases, attempts recorded with the delivery's state, paging, and pending work
//! that survives reopening the database.

use super::*;

fn events(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn failed(at_ms: i64, error: &str) -> AttemptRecord {
    AttemptRecord { at_ms, status: None, error: Some(error.into()), duration_ms: 3 }
}

fn answered(at_ms: i64, status: u16) -> AttemptRecord {
    AttemptRecord { at_ms, status: Some(status), error: None, duration_ms: 12 }
}

#[test]
fn hooks_round_trip_and_changes_are_audited_without_the_secret() {
    let s = Store::open_in_memory().unwrap();
    let h = s.create_webhook("https://example.test/hook", &events(&["class_started", "class_ended"]), "s3cret-s3cret-s3cret").unwrap();
    assert_eq!(s.webhook(&h.id).unwrap(), Some(h.clone()));
    assert_eq!(s.webhooks().unwrap(), vec![h.clone()]);
    assert!(h.wants("class_ended") && !h.wants("classroom_left"));
    assert!(s.delete_webhook(&h.id).unwrap());
    assert!(!s.delete_webhook(&h.id).unwrap(), "a second delete finds nothing");
    assert_eq!(s.webhook(&h.id).unwrap(), None);
    let (audit, total) = s.audit_log(10, 0).unwrap();
    assert_eq!(total, 2, "create and delete, not the refused second delete");
    assert_eq!((audit[0].action.as_str(), audit[1].action.as_str()), ("delete", "create"));
    assert!(audit.iter().all(|a| a.entity == "webhook" && a.entity_id == h.id && !a.summary.contains("s3cret")));
}

#[test]
fn events_go_to_the_active_hooks_subscribed_to_them() {
    let s = Store::open_in_memory().unwrap();
    let all = s.create_webhook("http://a.test/", &events(&[ALL_EVENTS]), "k").unwrap();
    let ended = s.create_webhook("http://b.test/", &events(&["class_ended"]), "k").unwrap();
    let off = s.create_webhook("http://c.test/", &events(&[ALL_EVENTS]), "k").unwrap();
    s.with(|c| c.execute("UPDATE webhooks SET active = 0 WHERE id = ?1", [&off.id])).unwrap();
    assert_eq!(s.enqueue_event("class_started", "{}", 1).unwrap().len(), 1);
    assert_eq!(s.enqueue_event("class_ended", "{}", 2).unwrap().len(), 2);
    assert_eq!(s.deliveries(&all.id, 10, 0).unwrap().1, 2);
    assert_eq!(s.deliveries(&ended.id, 10, 0).unwrap().1, 1);
    assert_eq!(s.deliveries(&off.id, 10, 0).unwrap().1, 0);
    assert!(s.enqueue_delivery(&off.id, "ping", "{}", 3).unwrap().is_some(), "a ping goes to the hook it names");
    assert!(s.enqueue_delivery("w-missing", "ping", "{}", 3).unwrap().is_none());
}

#[test]
fn claiming_leases_one_delivery_per_hook_and_skips_busy_hooks() {
    let s = Store::open_in_memory().unwrap();
    let a = s.create_webhook("http://a.test/", &events(&[ALL_EVENTS]), "ka").unwrap();
    let b = s.create_webhook("http://b.test/", &events(&[ALL_EVENTS]), "kb").unwrap();
    s.enqueue_event("class_started", r#"{"n":1}"#, 100).unwrap();
    s.enqueue_event("class_ended", r#"{"n":2}"#, 200).unwrap();
    assert!(s.claim_due(99, 10_000, 8, &HashSet::new()).unwrap().is_empty(), "nothing is due before it was created");
    let busy: HashSet<String> = [b.id.clone()].into();
    let first = s.claim_due(1_000, 10_000, 8, &busy).unwrap();
    assert_eq!(first.len(), 1, "one per hook, none of the busy one");
    let d = &first[0];
    assert_eq!((d.webhook_id.as_str(), d.url.as_str(), d.secret.as_str()), (a.id.as_str(), "http://a.test/", "ka"));
    assert_eq!((d.event.as_str(), d.data.as_str(), d.created_at_ms, d.attempts), ("class_started", r#"{"n":1}"#, 100, 0));
    let second = s.claim_due(1_000, 10_000, 8, &HashSet::new()).unwrap();
    assert_eq!(second.len(), 2, "a's second delivery and b's first; the leased one is not claimed again");
    assert!(second.iter().all(|x| x.id != d.id));
    assert_eq!(s.next_due_after(0).unwrap(), Some(200), "b's second delivery waits: its hook's first was claimed with it");
    assert_eq!(s.next_due_after(1_000).unwrap(), Some(10_000), "what is due already is not waited for");
    assert_eq!(s.claim_due(1_000, 10_000, 8, &HashSet::new()).unwrap().len(), 1);
    assert_eq!(s.next_due_after(0).unwrap(), Some(10_000), "all four are leased");
    assert_eq!(s.claim_due(10_000, 20_000, 1, &HashSet::new()).unwrap().len(), 1, "an expired lease makes it due again; limit holds");
}

#[test]
fn a_backlog_on_one_hook_never_hides_another_hooks_delivery() {
    let s = Store::open_in_memory().unwrap();
    let slow = s.create_webhook("http://slow.test/", &events(&["classroom_left"]), "k").unwrap();
    let other = s.create_webhook("http://other.test/", &events(&["class_ended"]), "k").unwrap();
    for at in 0..500 {
        s.enqueue_event("classroom_left", "{}", at).unwrap();
    }
    s.enqueue_event("class_ended", "{}", 1_000).unwrap();
    let busy: HashSet<String> = [slow.id.clone()].into();
    let due = s.claim_due(2_000, 20_000, 4, &busy).unwrap();
    assert_eq!(due.iter().map(|d| d.webhook_id.as_str()).collect::<Vec<_>>(), vec![other.id.as_str()]);
    let next = s.claim_due(2_000, 20_000, 4, &HashSet::new()).unwrap();
    assert_eq!((next.len(), next[0].created_at_ms), (1, 0), "the slow hook's oldest, in order");
}

#[test]
fn attempts_are_recorded_with_the_deliverys_state() {
    let s = Store::open_in_memory().unwrap();
    let h = s.create_webhook("http://a.test/", &events(&[ALL_EVENTS]), "k").unwrap();
    let id = s.enqueue_event("classroom_joined", r#"{"type":"classroom_joined"}"#, 50).unwrap().remove(0);
    assert_eq!(s.record_attempt(&id, &failed(100, "connect: Connection refused"), NextState::RetryAt(300)).unwrap(), Some(1));
    assert_eq!(s.record_attempt(&id, &answered(300, 503), NextState::RetryAt(700)).unwrap(), Some(2));
    let (page, _) = s.deliveries(&h.id, 10, 0).unwrap();
    assert_eq!((page[0].state, page[0].next_attempt_at_ms), (DeliveryState::Pending, Some(700)));
    assert_eq!(page[0].data, serde_json::json!({"type": "classroom_joined"}));
    assert_eq!(s.record_attempt(&id, &answered(700, 204), NextState::Delivered).unwrap(), Some(3));
    assert_eq!(s.record_attempt(&id, &answered(800, 200), NextState::Delivered).unwrap(), None, "a delivered delivery takes no more attempts");
    let d = s.deliveries(&h.id, 10, 0).unwrap().0.remove(0);
    assert_eq!((d.state, d.next_attempt_at_ms), (DeliveryState::Delivered, None));
    let log: Vec<_> = d.attempts.iter().map(|a| (a.attempt, a.at_ms, a.status, a.error.as_deref(), a.next_attempt_at_ms)).collect();
    assert_eq!(log, vec![
        (1, 100, None, Some("connect: Connection refused"), Some(300)),
        (2, 300, Some(503), None, Some(700)),
        (3, 700, Some(204), None, None),
    ]);
    let n: u32 = s.with(|c| c.query_row("SELECT attempts FROM webhook_deliveries WHERE id = ?1", [&id], |r| r.get(0))).unwrap();
    assert_eq!(n, 3);
    assert!(s.claim_due(i64::MAX, i64::MAX, 8, &HashSet::new()).unwrap().is_empty(), "a delivered delivery is never claimed");
}

#[test]
fn a_failed_delivery_is_final_and_a_deleted_hook_takes_its_log() {
    let s = Store::open_in_memory().unwrap();
    let h = s.create_webhook("http://a.test/", &events(&[ALL_EVENTS]), "k").unwrap();
    let id = s.enqueue_event("class_ended", "{}", 1).unwrap().remove(0);
    s.record_attempt(&id, &answered(2, 500), NextState::Failed).unwrap();
    let d = s.deliveries(&h.id, 10, 0).unwrap().0.remove(0);
    assert_eq!((d.state, d.next_attempt_at_ms, d.attempts[0].next_attempt_at_ms), (DeliveryState::Failed, None, None));
    assert!(s.claim_due(i64::MAX, i64::MAX, 8, &HashSet::new()).unwrap().is_empty());
    let other = s.enqueue_event("class_ended", "{}", 3).unwrap().remove(0);
    assert!(s.delete_webhook(&h.id).unwrap());
    assert_eq!(s.record_attempt(&other, &answered(4, 200), NextState::Delivered).unwrap(), None, "its hook is gone");
    let left: i64 = s.with(|c| c.query_row("SELECT (SELECT COUNT(*) FROM webhook_deliveries) + (SELECT COUNT(*) FROM webhook_attempts)", [], |r| r.get(0))).unwrap();
    assert_eq!(left, 0);
}

#[test]
fn deliveries_page_newest_first() {
    let s = Store::open_in_memory().unwrap();
    let h = s.create_webhook("http://a.test/", &events(&[ALL_EVENTS]), "k").unwrap();
    for at in 1..=5 {
        s.enqueue_event("classroom_left", &format!(r#"{{"at_ms":{at}}}"#), at).unwrap();
    }
    let (page, total) = s.deliveries(&h.id, 2, 1).unwrap();
    assert_eq!(total, 5);
    assert_eq!(page.iter().map(|d| d.created_at_ms).collect::<Vec<_>>(), vec![4, 3]);
    assert_eq!(s.deliveries(&h.id, 0, 0).unwrap().0.len(), 1, "the limit is at least 1");
    assert_eq!(s.deliveries("w-none", 10, 0).unwrap(), (vec![], 0));
}

#[test]
fn pending_deliveries_resume_after_reopening() {
    let path = std::env::temp_dir().join(format!("classcast-webhooks-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (retried, cut_short) = {
        let s = Store::open(&path).unwrap();
        s.create_webhook("http://a.test/", &events(&["class_started"]), "ka").unwrap();
        s.create_webhook("http://b.test/", &events(&["class_started"]), "kb").unwrap();
        let ids = s.enqueue_event("class_started", "{}", 1_000).unwrap();
        let claimed = s.claim_due(1_000, 16_000, 8, &HashSet::new()).unwrap();
        assert_eq!(claimed.len(), 2);
        s.record_attempt(&ids[0], &failed(1_000, "timed out after 10 s"), NextState::RetryAt(5_000)).unwrap();
        // The other send was in flight when the server stopped: nothing recorded.
        (ids[0].clone(), ids[1].clone())
    };
    let s = Store::open(&path).unwrap();
    assert_eq!(s.next_due_after(1_000).unwrap(), Some(5_000));
    let due = s.claim_due(5_000, 20_000, 8, &HashSet::new()).unwrap();
    assert_eq!(due.iter().map(|d| (d.id.as_str(), d.attempts)).collect::<Vec<_>>(), vec![(retried.as_str(), 1)]);
    let due = s.claim_due(16_000, 30_000, 8, &HashSet::new()).unwrap();
    assert_eq!(due.iter().map(|d| (d.id.as_str(), d.attempts)).collect::<Vec<_>>(), vec![(cut_short.as_str(), 0)], "resent once its lease ran out");
    drop(s);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
