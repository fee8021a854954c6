//! Migrations and the schema's own guarantees.

use auth_service::store;
use sqlx::{AnyConnection, Connection};

use crate::backend_tests;
use crate::support::backend::TestDatabase;
use crate::support::{test_config, Backend};

async fn a_second_start_migrates_nothing(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let config = test_config(&db.url);
    let first = store::connect(&config.database).await.unwrap();
    let applied = first.migrate().await.unwrap();
    first.close().await;

    let second = store::connect(&config.database).await.unwrap();
    let again = second.migrate().await.unwrap();

    assert!(applied >= 1);
    assert_eq!(again, 0);
}

/// Raw SQL through the `Any` driver: only to check what the schema itself enforces.
async fn connect_raw(db: &TestDatabase) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&db.url).await.unwrap()
}

async fn the_schema_seeds_roles_and_keeps_usernames_unique_regardless_of_case(backend: Backend) {
    let app = backend.app().await;
    let mut conn = connect_raw(&app.db).await;
    let roles: Vec<String> = sqlx::query_scalar("SELECT name FROM roles ORDER BY name")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let insert = "INSERT INTO users (id, email, username, password_hash, created_at, updated_at) \
                  VALUES ($1, $2, $3, 'x', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')";
    let cast = if backend == Backend::Postgres {
        insert.replace("$1,", "$1::uuid,").replace(
            "'2026-01-01T00:00:00Z'",
            "'2026-01-01T00:00:00Z'::timestamptz",
        )
    } else {
        insert.to_string()
    };

    let first = sqlx::query(&cast)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind("a@example.com")
        .bind("Alice")
        .execute(&mut conn)
        .await;
    let same_name = sqlx::query(&cast)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind("b@example.com")
        .bind("alice")
        .execute(&mut conn)
        .await;
    let same_email = sqlx::query(&cast)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind("a@example.com")
        .bind("bob")
        .execute(&mut conn)
        .await;

    assert_eq!(roles, ["admin", "moderator", "user"]);
    assert!(first.is_ok(), "{first:?}");
    assert!(
        same_name.is_err(),
        "a username differing only in case was accepted"
    );
    assert!(same_email.is_err(), "a duplicate email was accepted");
}

backend_tests! {
    a_second_start_migrates_nothing,
    the_schema_seeds_roles_and_keeps_usernames_unique_regardless_of_case,
}
