//! Negotiation, section by section of RFC 7692 section 7.1.

use crate::connection::Role;
use crate::deflate::*;
use crate::handshake::HandshakeError;

fn config(edit: impl FnOnce(&mut DeflateConfig)) -> DeflateConfig {
    let mut config = DeflateConfig::default();
    edit(&mut config);
    config
}

fn params(server_nct: bool, client_nct: bool, server_bits: u8, client_bits: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: server_nct,
        client_no_context_takeover: client_nct,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    }
}

/// The server's answer to one header line of offers.
fn answer(config: &DeflateConfig, offers: &str) -> Option<(DeflateParams, String)> {
    server_accept(
        config,
        &parse_extensions([offers]).expect("well-formed offers"),
    )
}

mod config_defaults {
    use super::*;

    #[test]
    fn defaults_are_documented_values_and_valid() {
        let config = DeflateConfig::default();
        assert!(config.enabled);
        assert!(!config.server_no_context_takeover && !config.client_no_context_takeover);
        assert_eq!(
            (config.server_max_window_bits, config.client_max_window_bits),
            (15, 15)
        );
        assert_eq!((config.level, config.min_size), (1, 64));
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let field = |edit: fn(&mut DeflateConfig)| config(edit).validate().map_err(|e| e.field);
        assert_eq!(
            field(|c| c.server_max_window_bits = 7),
            Err("server_max_window_bits")
        );
        assert_eq!(
            field(|c| c.server_max_window_bits = 16),
            Err("server_max_window_bits")
        );
        assert_eq!(
            field(|c| c.client_max_window_bits = 0),
            Err("client_max_window_bits")
        );
        assert_eq!(field(|c| c.level = 10), Err("level"));
        assert_eq!(field(|c| c.server_max_window_bits = 8), Ok(()));
        assert_eq!(field(|c| c.level = 0), Ok(()));
    }
}

mod agreed_params_by_role {
    use super::*;

    #[test]
    fn each_role_compresses_with_its_own_side() {
        let agreed = params(true, false, 10, 12);
        assert_eq!(agreed.compress_window(Role::Server), 10);
        assert_eq!(agreed.decompress_window(Role::Server), 12);
        assert_eq!(agreed.compress_window(Role::Client), 12);
        assert_eq!(agreed.decompress_window(Role::Client), 10);
        assert!(agreed.compress_resets(Role::Server) && agreed.decompress_resets(Role::Client));
        assert!(!agreed.compress_resets(Role::Client) && !agreed.decompress_resets(Role::Server));
        assert_eq!(DeflateParams::default(), params(false, false, 15, 15));
    }

    #[test]
    fn a_client_and_a_server_codec_understand_each_other() {
        use bytes::BytesMut;
        let agreed = params(true, false, 9, 11);
        let mut server_out = agreed.compressor(Role::Server, 6);
        let mut client_in = agreed.decompressor(Role::Client);
        let mut client_out = agreed.compressor(Role::Client, 6);
        let mut server_in = agreed.decompressor(Role::Server);
        for message in [&b"one message"[..], b"one message", b""] {
            for (tx, rx) in [
                (&mut server_out, &mut client_in),
                (&mut client_out, &mut server_in),
            ] {
                let (mut wire, mut got) = (BytesMut::new(), BytesMut::new());
                tx.compress(message, &mut wire);
                rx.decompress(&wire, &mut got, 1024).expect("valid");
                rx.finish_message(&mut got, 1024).expect("valid");
                assert_eq!(&got[..], message);
            }
        }
    }
}

/// Section 7.1 from the client's side: the offer, then the checks of the
/// server's answer.
mod client_side {
    use super::*;
    use NegotiationError::*;

    #[test]
    fn the_default_offer_is_what_browsers_send() {
        let offer = client_offer(&DeflateConfig::default());
        assert_eq!(
            offer.as_deref(),
            Some("permessage-deflate; client_max_window_bits")
        );
        assert_eq!(client_offer(&config(|c| c.enabled = false)), None);
    }

    #[test]
    fn the_offer_carries_every_configured_parameter() {
        let config = config(|c| {
            c.server_no_context_takeover = true;
            c.client_no_context_takeover = true;
            c.server_max_window_bits = 10;
            c.client_max_window_bits = 12;
        });
        assert_eq!(
            client_offer(&config).as_deref(),
            Some(
                "permessage-deflate; client_max_window_bits=12; server_max_window_bits=10; \
                 server_no_context_takeover; client_no_context_takeover"
            )
        );
    }

    #[test]
    fn answers_that_resolve() {
        let default = DeflateConfig::default();
        #[rustfmt::skip]
        let cases: &[(&DeflateConfig, &str, DeflateParams)] = &[
            (&default, "permessage-deflate", params(false, false, 15, 15)),
            // 7.1.1.1: the server may stop taking over unasked.
            (&default, "permessage-deflate; server_no_context_takeover", params(true, false, 15, 15)),
            (&default, "permessage-deflate; client_no_context_takeover", params(false, true, 15, 15)),
            // 7.1.2.1: the server may limit its own window unasked.
            (&default, "permessage-deflate; server_max_window_bits=10", params(false, false, 10, 15)),
            // 7.1.2.2: we advertised client_max_window_bits, so any 8..=15 binds us.
            (&default, "permessage-deflate; client_max_window_bits=8", params(false, false, 15, 8)),
            (&default, "permessage-deflate;client_max_window_bits=\"9\"", params(false, false, 15, 9)),
        ];
        for &(config, response, expected) in cases {
            assert_eq!(client_accept(config, response), Ok(expected), "{response}");
        }
    }

    #[test]
    fn our_own_limits_hold_when_the_answer_is_silent() {
        let ours = config(|c| {
            c.client_no_context_takeover = true;
            c.client_max_window_bits = 11;
        });
        assert_eq!(
            client_accept(&ours, "permessage-deflate"),
            Ok(params(false, true, 15, 11))
        );
        let smaller = client_accept(&ours, "permessage-deflate; client_max_window_bits=9");
        assert_eq!(smaller, Ok(params(false, true, 15, 9)));
    }

    #[test]
    fn asked_for_parameters_must_be_granted() {
        let asks = config(|c| {
            c.server_no_context_takeover = true;
            c.server_max_window_bits = 10;
        });
        #[rustfmt::skip]
        let cases: &[(&str, Result<DeflateParams, NegotiationError>)] = &[
            ("permessage-deflate; server_no_context_takeover; server_max_window_bits=10", Ok(params(true, false, 10, 15))),
            ("permessage-deflate; server_no_context_takeover; server_max_window_bits=8", Ok(params(true, false, 8, 15))),
            ("permessage-deflate; server_max_window_bits=10", Err(MissingParam("server_no_context_takeover"))),
            ("permessage-deflate; server_no_context_takeover", Err(MissingParam("server_max_window_bits"))),
            (
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
                Err(WindowTooLarge { param: "server_max_window_bits", limit: 10, answered: 11 }),
            ),
        ];
        for (response, expected) in cases {
            assert_eq!(&client_accept(&asks, response), expected, "{response}");
        }
    }

    #[test]
    fn a_client_window_above_the_one_we_announced_fails() {
        let ours = config(|c| c.client_max_window_bits = 10);
        let result = client_accept(&ours, "permessage-deflate; client_max_window_bits=12");
        let expected = WindowTooLarge {
            param: "client_max_window_bits",
            limit: 10,
            answered: 12,
        };
        assert_eq!(result, Err(expected));
    }

    #[test]
    fn bad_answers_fail_the_connection() {
        let default = DeflateConfig::default();
        let invalid = |param, value: Option<&str>| InvalidValue {
            param,
            value: value.map(str::to_owned),
        };
        #[rustfmt::skip]
        let cases: &[(&str, NegotiationError)] = &[
            ("x-webkit-deflate-frame", NotOffered("x-webkit-deflate-frame".into())),
            ("permessage-deflate, foo", NotOffered("foo".into())),
            ("permessage-deflate, permessage-deflate", DuplicateExtension),
            ("permessage-deflate; mem_level=8", UnknownParam("mem_level".into())),
            ("permessage-deflate; Server_No_Context_Takeover", UnknownParam("Server_No_Context_Takeover".into())),
            ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", DuplicateParam("server_no_context_takeover")),
            ("permessage-deflate; server_max_window_bits=9; server_max_window_bits=9", DuplicateParam("server_max_window_bits")),
            ("permessage-deflate; server_no_context_takeover=1", invalid("server_no_context_takeover", Some("1"))),
            ("permessage-deflate; client_no_context_takeover=\"x\"", invalid("client_no_context_takeover", Some("x"))),
            ("permessage-deflate; server_max_window_bits", invalid("server_max_window_bits", None)),
            // In an answer client_max_window_bits needs a value (7.1.2.2).
            ("permessage-deflate; client_max_window_bits", invalid("client_max_window_bits", None)),
            ("permessage-deflate; server_max_window_bits=7", invalid("server_max_window_bits", Some("7"))),
            ("permessage-deflate; server_max_window_bits=16", invalid("server_max_window_bits", Some("16"))),
            ("permessage-deflate; server_max_window_bits=09", invalid("server_max_window_bits", Some("09"))),
            ("permessage-deflate; client_max_window_bits=+9", invalid("client_max_window_bits", Some("+9"))),
            ("permessage-deflate; client_max_window_bits=1e1", invalid("client_max_window_bits", Some("1e1"))),
        ];
        for (response, expected) in cases {
            assert_eq!(
                client_accept(&default, response),
                Err(expected.clone()),
                "{response}"
            );
        }
    }

    #[test]
    fn malformed_answers_fail_the_connection() {
        let result = client_accept(&DeflateConfig::default(), "permessage-deflate; a=\"1");
        assert!(
            matches!(result, Err(NegotiationError::Malformed(_))),
            "{result:?}"
        );
        let result = client_accept(&DeflateConfig::default(), "");
        assert!(
            matches!(result, Err(NegotiationError::Malformed(_))),
            "{result:?}"
        );
    }

    #[test]
    fn an_answer_to_no_offer_fails() {
        let disabled = config(|c| c.enabled = false);
        let result = client_accept(&disabled, "permessage-deflate");
        assert_eq!(result, Err(NotOffered("permessage-deflate".into())));
    }

    #[test]
    fn errors_become_handshake_failures() {
        let error: HandshakeError = DuplicateExtension.into();
        assert_eq!(error.status().as_u16(), 502);
        assert!(
            error
                .to_string()
                .contains("permessage-deflate accepted twice"),
            "{error}"
        );
    }
}

/// Section 7.1 from the server's side: picking an offer and answering it.
mod server_side {
    use super::*;

    #[test]
    fn a_bare_offer_gets_a_bare_answer() {
        let (agreed, response) =
            answer(&DeflateConfig::default(), "permessage-deflate").expect("accepted");
        assert_eq!(agreed, DeflateParams::default());
        assert_eq!(response, "permessage-deflate");
    }

    #[test]
    fn the_browser_offer() {
        let offer = "permessage-deflate; client_max_window_bits";
        let (agreed, response) = answer(&DeflateConfig::default(), offer).expect("accepted");
        assert_eq!(agreed, DeflateParams::default());
        // 15 is no limit, so nothing to say.
        assert_eq!(response, "permessage-deflate");
    }

    #[test]
    fn answers_by_offer_and_config() {
        let default = DeflateConfig::default();
        let limits = config(|c| {
            c.server_max_window_bits = 10;
            c.client_max_window_bits = 11;
        });
        let no_takeover = config(|c| {
            c.server_no_context_takeover = true;
            c.client_no_context_takeover = true;
        });
        #[rustfmt::skip]
        let cases: &[(&DeflateConfig, &str, &str, DeflateParams)] = &[
            // 7.1.1.1: granted by echoing it.
            (&default, "permessage-deflate; server_no_context_takeover",
             "permessage-deflate; server_no_context_takeover", params(true, false, 15, 15)),
            // 7.1.1.2: the client's promise, confirmed.
            (&default, "permessage-deflate; client_no_context_takeover",
             "permessage-deflate; client_no_context_takeover", params(false, true, 15, 15)),
            // 7.1.2.1: the same or a smaller value.
            (&default, "permessage-deflate; server_max_window_bits=10",
             "permessage-deflate; server_max_window_bits=10", params(false, false, 10, 15)),
            (&limits, "permessage-deflate; server_max_window_bits=12; client_max_window_bits",
             "permessage-deflate; client_max_window_bits=11; server_max_window_bits=10", params(false, false, 10, 11)),
            (&limits, "permessage-deflate; server_max_window_bits=9; client_max_window_bits=8",
             "permessage-deflate; client_max_window_bits=8; server_max_window_bits=9", params(false, false, 9, 8)),
            // A server may limit itself unasked (7.1.2.1, last paragraph).
            (&limits, "permessage-deflate; client_max_window_bits",
             "permessage-deflate; client_max_window_bits=11; server_max_window_bits=10", params(false, false, 10, 11)),
            // 7.1.2.2: a client's announced size is confirmed.
            (&default, "permessage-deflate; client_max_window_bits=12",
             "permessage-deflate; client_max_window_bits=12", params(false, false, 15, 12)),
            // 8 is granted: we compress it with 9, which stays within 256 bytes.
            (&default, "permessage-deflate; server_max_window_bits=8",
             "permessage-deflate; server_max_window_bits=8", params(false, false, 8, 15)),
            (&no_takeover, "permessage-deflate",
             "permessage-deflate; server_no_context_takeover; client_no_context_takeover", params(true, true, 15, 15)),
        ];
        for &(config, offers, response, expected) in cases {
            assert_eq!(
                answer(config, offers),
                Some((expected, response.to_owned())),
                "{offers}"
            );
        }
    }

    #[test]
    fn every_answer_satisfies_the_client_that_offered_it() {
        let configs = [
            DeflateConfig::default(),
            config(|c| c.server_max_window_bits = 9),
            config(|c| {
                c.server_no_context_takeover = true;
                c.client_max_window_bits = 10;
                c.client_no_context_takeover = true;
            }),
            config(|c| c.server_max_window_bits = 8),
        ];
        for client in &configs {
            for server in &configs {
                let offer = client_offer(client).expect("enabled");
                let (server_view, response) = answer(server, &offer).expect("accepted");
                assert_eq!(
                    client_accept(client, &response),
                    Ok(server_view),
                    "{offer} / {response}"
                );
            }
        }
    }

    #[test]
    fn invalid_offers_are_declined_and_the_next_one_tried() {
        let default = DeflateConfig::default();
        for bad in [
            "permessage-deflate; unknown",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_no_context_takeover=yes",
        ] {
            assert_eq!(answer(&default, bad), None, "{bad}");
            let with_fallback =
                format!("{bad}, x-other, permessage-deflate; server_max_window_bits=12");
            let (agreed, response) = answer(&default, &with_fallback).expect("fallback accepted");
            assert_eq!(response, "permessage-deflate; server_max_window_bits=12");
            assert_eq!(agreed, params(false, false, 12, 15));
        }
    }

    #[test]
    fn the_first_acceptable_offer_wins() {
        let offers = "permessage-deflate; server_max_window_bits=10, permessage-deflate";
        let (agreed, _) = answer(&DeflateConfig::default(), offers).expect("accepted");
        assert_eq!(agreed.server_max_window_bits, 10);
    }

    #[test]
    fn a_client_window_limit_declines_clients_that_cannot_bound_theirs() {
        let limited = config(|c| c.client_max_window_bits = 10);
        assert_eq!(answer(&limited, "permessage-deflate"), None);
        let offers = "permessage-deflate, permessage-deflate; client_max_window_bits";
        let (agreed, response) = answer(&limited, offers).expect("second accepted");
        assert_eq!(response, "permessage-deflate; client_max_window_bits=10");
        assert_eq!(agreed.client_max_window_bits, 10);
    }

    #[test]
    fn other_extensions_and_disabled_config() {
        assert_eq!(
            answer(&DeflateConfig::default(), "x-webkit-deflate-frame, foo"),
            None
        );
        assert_eq!(
            answer(&config(|c| c.enabled = false), "permessage-deflate"),
            None
        );
        assert_eq!(server_accept(&DeflateConfig::default(), &[]), None);
    }

    #[test]
    fn offers_from_several_header_lines() {
        let offers = parse_extensions(["foo", "permessage-deflate; client_max_window_bits=9"])
            .expect("valid");
        let (agreed, _) = server_accept(&DeflateConfig::default(), &offers).expect("accepted");
        assert_eq!(agreed.client_max_window_bits, 9);
    }
}
