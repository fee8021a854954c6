//! The device behind a session, read from its User-Agent.

/// Browser, operating system and kind of device, as far as the User-Agent tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    pub browser: Option<String>,
    pub os: Option<String>,
    pub device_type: Option<String>,
}

impl Device {
    /// Parses a User-Agent with `woothee`; unknown parts stay `None`.
    pub fn from_user_agent(user_agent: &str) -> Self {
        let known =
            |value: &str| (!value.is_empty() && value != "UNKNOWN").then(|| value.to_owned());
        match woothee::parser::Parser::new().parse(user_agent) {
            Some(result) => Self {
                browser: known(result.name),
                os: known(result.os),
                device_type: known(match result.category {
                    "pc" => "desktop",
                    "smartphone" => "mobile",
                    "mobilephone" => "mobile",
                    "crawler" => "bot",
                    "appliance" => "appliance",
                    other => other,
                }),
            },
            None => Self::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_desktop_browser_is_recognised() {
        let device = Device::from_user_agent(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        );

        assert_eq!(device.browser.as_deref(), Some("Chrome"));
        assert_eq!(device.os.as_deref(), Some("Windows 10"));
        assert_eq!(device.device_type.as_deref(), Some("desktop"));
    }

    #[test]
    fn an_unknown_agent_gives_nothing() {
        assert_eq!(Device::from_user_agent("curl-ish/1"), Device::default());
    }
}
