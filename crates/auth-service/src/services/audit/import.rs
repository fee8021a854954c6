//! Importing users from another service (`auth-service users import`): checking every row of
//! the file and writing all of them in one transaction, or none.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::Audit;
use crate::crypto::password::check_given_hash;
use crate::domain::user::DEFAULT_ROLE;
use crate::domain::{AuditAction, Email, Username};
use crate::error::{Error, FieldError};
use crate::services::context::RequestContext;
use crate::store::{Effects, NewUser};

/// One row of an import file, as the file gave it; `line` is where the row starts.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: usize,
    pub email: String,
    pub username: String,
    pub password_hash: String,
    pub display_name: Option<String>,
    pub is_verified: bool,
    pub created_at: Option<DateTime<Utc>>,
}

/// Something wrong with one row of an import file. Never carries a hash or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl RowProblem {
    pub fn new(line: usize, field: &str, message: impl Into<String>) -> Self {
        Self {
            line,
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.field, self.message)
    }
}

/// What an import file held: the rows that could be read, and the problems of the rest.
#[derive(Debug, Clone, Default)]
pub struct ImportFile {
    pub rows: Vec<ImportRow>,
    pub problems: Vec<RowProblem>,
}

/// What an import did: all rows, or none because of the listed problems (by line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    Imported(u64),
    Refused(Vec<RowProblem>),
}

impl Audit {
    /// Checks every row (syntax, hash format, duplicates in the file and in the database) and
    /// imports all of them in one transaction, each with the default role, or none.
    pub async fn import_users(&self, file: ImportFile) -> Result<ImportOutcome, Error> {
        let ctx = &self.context;
        let now = ctx.now();
        let mut problems = file.problems;
        let mut users = Vec::with_capacity(file.rows.len());
        let mut lines = Vec::with_capacity(file.rows.len());
        for row in file.rows {
            match checked_user(&row, now) {
                Ok(user) => {
                    users.push(user);
                    lines.push(row.line);
                }
                Err(mut found) => problems.append(&mut found),
            }
        }
        problems.extend(duplicates(&users, &lines));
        let emails: Vec<String> = users.iter().map(|u| u.email.clone()).collect();
        let usernames: Vec<String> = users.iter().map(|u| u.username.clone()).collect();
        let taken = ctx.store.taken_logins(&emails, &usernames).await?;
        let taken_emails: HashSet<String> = taken.emails.into_iter().collect();
        let taken_names: HashSet<String> = taken
            .usernames
            .iter()
            .map(|name| name.to_lowercase())
            .collect();
        for (user, &line) in users.iter().zip(&lines) {
            if taken_emails.contains(&user.email) {
                problems.push(RowProblem::new(line, "email", "is already registered"));
            }
            if taken_names.contains(&user.username.to_lowercase()) {
                problems.push(RowProblem::new(line, "username", "is already taken"));
            }
        }
        if !problems.is_empty() {
            problems.sort_by_key(|problem| problem.line);
            return Ok(ImportOutcome::Refused(problems));
        }
        let effects = Effects {
            events: Vec::new(),
            audit: vec![ctx.audit(
                AuditAction::UsersImported,
                None,
                None,
                json!({ "count": users.len() }),
                &RequestContext::default(),
            )],
        };
        // The unique indexes still decide: a user created meanwhile fails the whole import.
        let count = ctx
            .store
            .import_users(&users, DEFAULT_ROLE, &effects)
            .await?;
        Ok(ImportOutcome::Imported(count))
    }
}

/// The user a row describes, or every problem of the row.
fn checked_user(row: &ImportRow, now: DateTime<Utc>) -> Result<NewUser, Vec<RowProblem>> {
    let problem = |error: FieldError| RowProblem::new(row.line, &error.field, error.message);
    let email = Email::parse(&row.email).map_err(problem);
    let username = Username::parse(&row.username).map_err(problem);
    let hash = check_given_hash(&row.password_hash)
        .map_err(|refused| RowProblem::new(row.line, "password_hash", refused.message()));
    let display_name = display_name(row.display_name.as_deref())
        .map_err(|message| RowProblem::new(row.line, "display_name", message));
    match (email, username, hash, display_name) {
        (Ok(email), Ok(username), Ok(()), Ok(display_name)) => Ok(NewUser {
            id: Uuid::now_v7(),
            email: email.as_str().to_owned(),
            username: username.as_str().to_owned(),
            password_hash: row.password_hash.clone(),
            display_name,
            is_verified: row.is_verified,
            created_at: row.created_at.unwrap_or(now),
        }),
        (email, username, hash, display_name) => {
            Err(
                [email.err(), username.err(), hash.err(), display_name.err()]
                    .into_iter()
                    .flatten()
                    .collect(),
            )
        }
    }
}

/// Emails and usernames that an earlier row of the file already uses (usernames regardless
/// of case; emails are lowercase by now).
fn duplicates(users: &[NewUser], lines: &[usize]) -> Vec<RowProblem> {
    let mut first_lines: [HashMap<String, usize>; 2] = Default::default();
    let mut problems = Vec::new();
    for (user, &line) in users.iter().zip(lines) {
        let keys = [user.email.clone(), user.username.to_lowercase()];
        for ((seen, key), field) in first_lines.iter_mut().zip(keys).zip(["email", "username"]) {
            match seen.entry(key) {
                Entry::Occupied(first) => problems.push(RowProblem::new(
                    line,
                    field,
                    format!("appears already on line {}", first.get()),
                )),
                Entry::Vacant(slot) => {
                    slot.insert(line);
                }
            }
        }
    }
    problems
}

/// The optional display name, held to the same rules as a profile's (trimmed, at most 100
/// characters, no control characters).
fn display_name(raw: Option<&str>) -> Result<Option<String>, &'static str> {
    let Some(name) = raw.map(str::trim).filter(|name| !name.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > 100 {
        return Err("must be at most 100 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(Some(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_rows_repeating_an_email_or_username_are_named() {
        let user = |email: &str, username: &str| NewUser {
            id: Uuid::now_v7(),
            email: email.to_owned(),
            username: username.to_owned(),
            password_hash: String::new(),
            display_name: None,
            is_verified: false,
            created_at: DateTime::UNIX_EPOCH,
        };
        let users = [
            user("a@example.com", "alice"),
            user("b@example.com", "ALICE"),
            user("a@example.com", "carol"),
        ];

        let problems = duplicates(&users, &[2, 3, 4]);

        assert_eq!(
            problems,
            [
                RowProblem::new(3, "username", "appears already on line 2"),
                RowProblem::new(4, "email", "appears already on line 2"),
            ]
        );
    }
}
