//! What `classcast serve` prints at start: where the pages are (teacher,
//! classroom, observer, replay), with working links. On a first start (no class in the database) one class with one
//! listening classroom is created so the links lead somewhere real.

use crate::config::Config;
use crate::rooms::auth::{Claims, ISSUER};
use crate::rooms::{RoomError, Rooms, identity_for};
use crate::signaling::protocol::Role;
use crate::store::unix_now;

const LINK_TTL_SECS: i64 = 7 * 24 * 3600;

pub fn print(config: &Config, rooms: &Rooms) -> Result<(), RoomError> {
    let store = &rooms.store;
    let class = match store.list_classes()?.into_iter().next() {
        Some(c) => c,
        None => store.create_class("第一课堂 First class", "", true)?,
    };
    let classroom = match store.classrooms(&class.id)?.into_iter().next() {
        Some(r) => r,
        None => store.add_classroom(&class.id, "教学点 1 Teaching point 1")?,
    };
    let link = |role: Role, name: &str, classroom_id: Option<&str>, page: &str| {
        let now = unix_now();
        let claims = Claims {
            iss: ISSUER.into(),
            cls: class.id.clone(),
            sub: identity_for(role, classroom_id),
            role,
            name: name.into(),
            iat: now,
            exp: now + LINK_TTL_SECS,
            dev: None,
        };
        format!("{}/{page}#token={}", config.public_url, rooms.tokens.mint(&claims))
    };
    println!("\nclasscast is serving on {}", config.public_url);
    println!("  admin pages     {}/admin.html  (admin key: {})", config.public_url, config.admin_key);
    if store.admins().is_ok_and(|a| a.is_empty()) {
        println!("                  (to sign in with a password: classcast admin add-user --username NAME)");
    }
    println!("  class           {} ({})", class.title, class.id);
    println!("  teacher console {}", link(Role::Main, "Teacher 老师", None, "teacher.html"));
    println!("  classroom 1     {}", link(Role::Classroom, &classroom.name, Some(&classroom.id), "classroom.html"));
    println!("  observer        {}", link(Role::Observer, "Observer 观摩", None, "observer.html"));
    let replay = format!("replay.html?class={}", class.id);
    println!("  student replay  {}", link(Role::Student, "Student 学生", None, &replay));
    println!("  WHEP player     {}/whep.html?class={}", config.public_url, class.id);
    println!("  (links are valid for 7 days; mint more in the admin pages)\n");
    Ok(())
}
