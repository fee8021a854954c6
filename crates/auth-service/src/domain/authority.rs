//! Who may administer what (SPEC §5): the grants a user holds, the scope of an administrator's
//! authority that follows from them, and which users and changes that scope reaches.

use super::user::User;

/// The role that makes an administrator: held globally, or in one territory.
pub const ADMIN_ROLE: &str = "admin";

/// A role held globally (`territory` is `None`) or in one territory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub role: String,
    pub territory: Option<String>,
}

/// Every role a user holds, wherever.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(pub Vec<Grant>);

impl Grants {
    /// Holds `admin` as a global role.
    pub fn global_admin(&self) -> bool {
        self.0
            .iter()
            .any(|grant| grant.role == ADMIN_ROLE && grant.territory.is_none())
    }

    /// Holds `admin` globally or in any territory.
    pub fn admin_anywhere(&self) -> bool {
        self.0.iter().any(|grant| grant.role == ADMIN_ROLE)
    }

    /// Holds `admin` in territory `code`.
    fn admin_in(&self, code: &str) -> bool {
        self.0
            .iter()
            .any(|grant| grant.role == ADMIN_ROLE && grant.territory.as_deref() == Some(code))
    }
}

/// How far an administrator's authority reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminScope {
    /// `admin` held globally: everything in SPEC §2 Administration.
    Global,
    /// `admin` held only in this deployment's territory: its members, its roles.
    Territory(String),
}

impl AdminScope {
    /// The scope of a caller holding `grants` on a deployment of `deployment`; `None` for a
    /// caller who is no administrator here (an admin of another territory is none).
    pub fn of(grants: &Grants, deployment: Option<&str>) -> Option<Self> {
        if grants.global_admin() {
            return Some(Self::Global);
        }
        deployment
            .filter(|code| grants.admin_in(code))
            .map(|code| Self::Territory(code.to_owned()))
    }

    /// The territory a territory admin is confined to; `None` for a global admin.
    pub fn territory(&self) -> Option<&str> {
        match self {
            Self::Global => None,
            Self::Territory(code) => Some(code),
        }
    }

    /// Whether a user is within reach for reading: a territory admin sees members of its
    /// territory only.
    pub fn sees(&self, user: &User) -> bool {
        match self {
            Self::Global => true,
            Self::Territory(code) => user.territories.iter().any(|held| held == code),
        }
    }

    /// Whether a user is within reach for a change: seen, and no global admin unless the
    /// caller is one.
    pub fn may_change(&self, user: &User, grants: &Grants) -> bool {
        self.sees(user) && (*self == Self::Global || !grants.global_admin())
    }

    /// Whether a user may be made a member of `code`: by a global admin anyone; by a territory
    /// admin only into its own territory, and only a member already or a user who belongs to
    /// no other territory and administers nothing (so no one is pulled in from elsewhere and
    /// then taken over).
    pub fn may_enrol(&self, user: &User, grants: &Grants, code: &str) -> bool {
        match self {
            Self::Global => true,
            Self::Territory(own) if own != code => false,
            Self::Territory(_) if self.sees(user) => !grants.global_admin(),
            Self::Territory(_) => user.territories.is_empty() && !grants.admin_anywhere(),
        }
    }

    /// Whether a change of credentials (email, password, stored hash) may be made to `user`:
    /// a territory admin may not change another administrator's.
    pub fn may_change_credentials(&self, user: &User, grants: &Grants, caller: &User) -> bool {
        *self == Self::Global || user.id == caller.id || !grants.admin_anywhere()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(role: &str, territory: Option<&str>) -> Grant {
        Grant {
            role: role.into(),
            territory: territory.map(str::to_owned),
        }
    }

    fn member_of(territories: &[&str]) -> User {
        User {
            id: uuid::Uuid::now_v7(),
            email: "a@example.com".into(),
            username: "a".into(),
            display_name: None,
            avatar_url: None,
            bio: None,
            is_verified: true,
            is_active: true,
            roles: Vec::new(),
            territories: territories.iter().map(|t| (*t).to_owned()).collect(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_scope_follows_where_admin_is_held() {
        let global = Grants(vec![grant("admin", None)]);
        let in_dk = Grants(vec![grant("user", None), grant("admin", Some("dk"))]);

        assert_eq!(
            AdminScope::of(&global, Some("se")),
            Some(AdminScope::Global)
        );
        assert_eq!(
            AdminScope::of(&in_dk, Some("dk")),
            Some(AdminScope::Territory("dk".into()))
        );
        assert_eq!(AdminScope::of(&in_dk, Some("se")), None);
        assert_eq!(AdminScope::of(&in_dk, None), None);
    }

    #[test]
    fn a_territory_admin_reaches_members_who_are_no_global_admin() {
        let scope = AdminScope::Territory("dk".into());
        let plain = Grants(vec![grant("user", None)]);
        let root = Grants(vec![grant("admin", None)]);

        assert!(scope.may_change(&member_of(&["dk"]), &plain));
        assert!(!scope.may_change(&member_of(&["se"]), &plain));
        assert!(!scope.may_change(&member_of(&["dk"]), &root));
        assert!(scope.may_enrol(&member_of(&[]), &plain, "dk"));
        assert!(!scope.may_enrol(&member_of(&[]), &plain, "se"));
        assert!(!scope.may_enrol(&member_of(&["se"]), &plain, "dk"));
        let admin_elsewhere = Grants(vec![grant("admin", Some("se"))]);
        assert!(!scope.may_enrol(&member_of(&[]), &admin_elsewhere, "dk"));
        assert!(AdminScope::Global.may_change(&member_of(&[]), &root));
    }
}
