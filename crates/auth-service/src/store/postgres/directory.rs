//! PostgreSQL: roles, territories and memberships.
//!
//! A territory update reads the row `FOR UPDATE`; memberships change in single statements whose
//! row and key locks order concurrent calls.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::users::grant_roles;
use super::{db_error, write_effects, PgStore};
use crate::domain::authority::{Grant, Grants};
use crate::store::{
    DirectoryStore, Effects, FoundEffects, MemberChange, Role, RolesEffects, StoreResult,
    Territory, TerritoryEffects, TerritoryPatch,
};

const TERRITORY_COLUMNS: &str = "code, name, description, is_active, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct RoleRow {
    name: String,
    description: Option<String>,
    permissions: Json<Vec<String>>,
    created_at: DateTime<Utc>,
}

impl From<RoleRow> for Role {
    fn from(row: RoleRow) -> Self {
        Role {
            name: row.name,
            description: row.description,
            permissions: row.permissions.0,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct TerritoryRow {
    code: String,
    name: String,
    description: Option<String>,
    is_active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<TerritoryRow> for Territory {
    fn from(row: TerritoryRow) -> Self {
        Territory {
            code: row.code,
            name: row.name,
            description: row.description,
            is_active: row.is_active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Makes the user a member unless they are one; whether a row was added, or why not.
pub(super) async fn join(
    tx: &mut Transaction<'_, Postgres>,
    user_id: Uuid,
    code: &str,
    now: DateTime<Utc>,
) -> StoreResult<Result<bool, MemberChange>> {
    let added = sqlx::query(
        "INSERT INTO user_territories (user_id, territory_code, joined_at) \
         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL) \
           AND EXISTS (SELECT 1 FROM territories WHERE code = $2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(code)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?
    .rows_affected();
    if added == 1 {
        return Ok(Ok(true));
    }
    Ok(missing(tx, user_id, code).await?.map_or(Ok(false), Err))
}

/// Which of the user and the territory does not exist, if either.
async fn missing(
    tx: &mut Transaction<'_, Postgres>,
    user_id: Uuid,
    code: &str,
) -> StoreResult<Option<MemberChange>> {
    let (user, territory): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL), \
                EXISTS (SELECT 1 FROM territories WHERE code = $2)",
    )
    .bind(user_id)
    .bind(code)
    .fetch_one(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(if !user {
        Some(MemberChange::UnknownUser)
    } else if !territory {
        Some(MemberChange::UnknownTerritory)
    } else {
        None
    })
}

/// Removes the roles the user holds in the territory; their names.
async fn drop_territory_roles(
    tx: &mut Transaction<'_, Postgres>,
    user_id: Uuid,
    code: &str,
) -> StoreResult<Vec<String>> {
    let mut roles: Vec<String> = sqlx::query_scalar(
        "DELETE FROM user_roles WHERE user_id = $1 AND territory_code = $2 RETURNING role_name",
    )
    .bind(user_id)
    .bind(code)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)?;
    roles.sort();
    Ok(roles)
}

#[async_trait]
impl DirectoryStore for PgStore {
    async fn roles(&self) -> StoreResult<Vec<Role>> {
        let rows: Vec<RoleRow> = sqlx::query_as(
            "SELECT name, description, permissions, created_at FROM roles ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(rows.into_iter().map(Role::from).collect())
    }

    async fn grants(&self, user_id: Uuid) -> StoreResult<Grants> {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT r.role_name, r.territory_code FROM user_roles r JOIN users u ON u.id = r.user_id \
             WHERE r.user_id = $1 AND u.deleted_at IS NULL ORDER BY r.role_name, r.territory_code",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(Grants(
            rows.into_iter()
                .map(|(role, territory)| Grant { role, territory })
                .collect(),
        ))
    }

    async fn create_role(&self, role: &Role, effects: &Effects) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        sqlx::query(
            "INSERT INTO roles (name, description, permissions, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&role.name)
        .bind(&role.description)
        .bind(Json(&role.permissions))
        .bind(role.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        write_effects(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn delete_role(&self, name: &str, effects: FoundEffects<'_, Uuid>) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // The foreign key would cascade too; deleting the grants first names their holders.
        let mut holders: Vec<Uuid> =
            sqlx::query_scalar("DELETE FROM user_roles WHERE role_name = $1 RETURNING user_id")
                .bind(name)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
        let deleted = sqlx::query("DELETE FROM roles WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        holders.sort();
        holders.dedup();
        write_effects(&mut tx, &effects(&holders)).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn territories(&self) -> StoreResult<Vec<Territory>> {
        let sql = format!("SELECT {TERRITORY_COLUMNS} FROM territories ORDER BY code");
        let rows: Vec<TerritoryRow> = sqlx::query_as(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(Territory::from).collect())
    }

    async fn create_territory(&self, territory: &Territory, effects: &Effects) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        sqlx::query(
            "INSERT INTO territories (code, name, description, is_active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&territory.code)
        .bind(&territory.name)
        .bind(&territory.description)
        .bind(territory.is_active)
        .bind(territory.created_at)
        .bind(territory.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        write_effects(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn update_territory(
        &self,
        code: &str,
        patch: &TerritoryPatch,
        now: DateTime<Utc>,
        effects: TerritoryEffects<'_>,
    ) -> StoreResult<Option<Territory>> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // PostgreSQL: the row lock keeps `before` true until commit.
        let sql = format!("SELECT {TERRITORY_COLUMNS} FROM territories WHERE code = $1 FOR UPDATE");
        let before: Option<TerritoryRow> = sqlx::query_as(&sql)
            .bind(code)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let Some(before) = before.map(Territory::from) else {
            return Ok(None);
        };
        let sql = format!(
            "UPDATE territories SET \
               name = COALESCE($2, name), \
               description = CASE WHEN $3 THEN $4 ELSE description END, \
               is_active = COALESCE($5, is_active), \
               updated_at = $6 \
             WHERE code = $1 RETURNING {TERRITORY_COLUMNS}"
        );
        let after: TerritoryRow = sqlx::query_as(&sql)
            .bind(code)
            .bind(&patch.name)
            .bind(patch.description.is_some())
            .bind(patch.description.clone().flatten())
            .bind(patch.is_active)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let after = Territory::from(after);
        write_effects(&mut tx, &effects(&before, &after)).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(Some(after))
    }

    async fn add_member(
        &self,
        user_id: Uuid,
        code: &str,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<MemberChange> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let changed = match join(&mut tx, user_id, code, now).await? {
            Ok(changed) => changed,
            Err(why) => return Ok(why),
        };
        if changed {
            write_effects(&mut tx, effects).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(MemberChange::Done { changed })
    }

    async fn remove_member(
        &self,
        user_id: Uuid,
        code: &str,
        effects: FoundEffects<'_, String>,
    ) -> StoreResult<MemberChange> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let roles = drop_territory_roles(&mut tx, user_id, code).await?;
        let removed =
            sqlx::query("DELETE FROM user_territories WHERE user_id = $1 AND territory_code = $2")
                .bind(user_id)
                .bind(code)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?
                .rows_affected();
        if let Some(why) = missing(&mut tx, user_id, code).await? {
            return Ok(why);
        }
        let changed = removed > 0 || !roles.is_empty();
        if changed {
            write_effects(&mut tx, &effects(&roles)).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(MemberChange::Done { changed })
    }

    async fn set_territory_roles(
        &self,
        user_id: Uuid,
        code: &str,
        roles: &[String],
        now: DateTime<Utc>,
        effects: RolesEffects<'_>,
    ) -> StoreResult<MemberChange> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let joined = match join(&mut tx, user_id, code, now).await? {
            Ok(joined) => joined,
            Err(why) => return Ok(why),
        };
        // PostgreSQL: the membership row lock makes concurrent replacements take turns.
        sqlx::query(
            "SELECT 1 FROM user_territories WHERE user_id = $1 AND territory_code = $2 FOR UPDATE",
        )
        .bind(user_id)
        .bind(code)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let before = drop_territory_roles(&mut tx, user_id, code).await?;
        grant_roles(&mut tx, user_id, roles, Some(code), now).await?;
        write_effects(&mut tx, &effects(joined, &before)).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(MemberChange::Done { changed: true })
    }
}
