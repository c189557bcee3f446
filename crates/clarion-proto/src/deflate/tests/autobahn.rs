//! Every offer and answer shape of the Autobahn suite's compression cases
//! (autobahntestsuite `case/case12_x_x.py`, which defines 12.* and 13.*;
//! the strings come from autobahn's `compress_deflate.py`).
//!
//! Against our server, the fuzzing client offers `PerMessageDeflateOffer`s,
//! which always list `client_no_context_takeover; client_max_window_bits`
//! (it accepts both) before what it requests. Against our client, the
//! fuzzing server answers our offer with `accept1`..`accept7`.

use crate::connection::Role;
use crate::deflate::*;

fn params(server_nct: bool, client_nct: bool, server_bits: u8, client_bits: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: server_nct,
        client_no_context_takeover: client_nct,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    }
}

/// What Autobahn's `PerMessageDeflateOffer(requestNoContextTakeover,
/// requestMaxWindowBits).getExtensionString()` sends.
fn autobahn_offer(request_no_context_takeover: bool, request_max_window_bits: u8) -> String {
    let mut offer =
        "permessage-deflate; client_no_context_takeover; client_max_window_bits".to_owned();
    if request_no_context_takeover {
        offer.push_str("; server_no_context_takeover");
    }
    if request_max_window_bits != 0 {
        offer.push_str(&format!(
            "; server_max_window_bits={request_max_window_bits}"
        ));
    }
    offer
}

/// Autobahn as the client (`wstest -m fuzzingclient`), our server answering.
mod our_server {
    use super::*;

    #[test]
    fn every_case_offer_is_accepted_as_expected() {
        let e = "permessage-deflate; client_no_context_takeover";
        #[rustfmt::skip]
        let cases: Vec<(&str, String, String, DeflateParams)> = vec![
            // 12.* and 13.1: the default offer.
            ("13.1", autobahn_offer(false, 0), e.to_owned(), params(false, true, 15, 15)),
            ("13.2", autobahn_offer(true, 0),
             "permessage-deflate; server_no_context_takeover; client_no_context_takeover".to_owned(), params(true, true, 15, 15)),
            ("13.3", autobahn_offer(false, 9),
             "permessage-deflate; server_max_window_bits=9; client_no_context_takeover".to_owned(), params(false, true, 9, 15)),
            ("13.4", autobahn_offer(false, 15),
             "permessage-deflate; server_max_window_bits=15; client_no_context_takeover".to_owned(), params(false, true, 15, 15)),
            ("13.5", autobahn_offer(true, 9),
             "permessage-deflate; server_max_window_bits=9; server_no_context_takeover; client_no_context_takeover".to_owned(),
             params(true, true, 9, 15)),
            ("13.6", autobahn_offer(true, 15),
             "permessage-deflate; server_max_window_bits=15; server_no_context_takeover; client_no_context_takeover".to_owned(),
             params(true, true, 15, 15)),
            // 13.7: three offers in one header; the first is acceptable.
            ("13.7", [autobahn_offer(true, 9), autobahn_offer(true, 0), autobahn_offer(false, 0)].join(", "),
             "permessage-deflate; server_max_window_bits=9; server_no_context_takeover; client_no_context_takeover".to_owned(),
             params(true, true, 9, 15)),
        ];
        for (case, offer, response, expected) in cases {
            let offers = parse_extensions([offer.as_str()]).expect("Autobahn's offer parses");
            let accepted = server_accept(&DeflateConfig::default(), &offers);
            assert_eq!(accepted, Some((expected, response)), "case {case}: {offer}");
        }
    }

    #[test]
    fn an_autobahn_offer_of_eight_bits_would_be_accepted_too() {
        // Autobahn allows 8 (WINDOW_SIZE_PERMISSIBLE_VALUES), though no case uses it.
        let offers = parse_extensions([autobahn_offer(false, 8).as_str()]).expect("valid");
        let (agreed, _) = server_accept(&DeflateConfig::default(), &offers).expect("accepted");
        assert_eq!(agreed.compress_window(Role::Server), 8);
    }
}

/// Autobahn as the server (`wstest -m fuzzingserver`), our client checking
/// its answers to our offer.
mod our_client {
    use super::*;

    /// Autobahn's `PerMessageDeflateOfferAccept.getExtensionString()`:
    /// what the client requested, then what the server requests.
    fn autobahn_answer(
        offer: &str,
        request_no_context_takeover: bool,
        request_max_window_bits: u8,
    ) -> String {
        let mut answer = "permessage-deflate".to_owned();
        if offer.contains("server_no_context_takeover") {
            answer.push_str("; server_no_context_takeover");
        }
        if let Some(bits) = offer.split("server_max_window_bits=").nth(1) {
            answer.push_str(&format!(
                "; server_max_window_bits={}",
                &bits[..bits.find(';').unwrap_or(bits.len())]
            ));
        }
        if request_no_context_takeover {
            answer.push_str("; client_no_context_takeover");
        }
        if request_max_window_bits != 0 {
            answer.push_str(&format!(
                "; client_max_window_bits={request_max_window_bits}"
            ));
        }
        answer
    }

    #[test]
    fn every_case_answer_to_the_default_offer_resolves() {
        let config = DeflateConfig::default();
        let offer = client_offer(&config).expect("enabled");
        // accept1..accept7 as (requestNoContextTakeover, requestMaxWindowBits).
        #[rustfmt::skip]
        let cases = [
            ("12.*, 13.1", false, 0, params(false, false, 15, 15)),
            ("13.2", true, 0, params(false, true, 15, 15)),
            ("13.3", false, 9, params(false, false, 15, 9)),
            ("13.4", false, 15, params(false, false, 15, 15)),
            ("13.5", true, 9, params(false, true, 15, 9)),
            ("13.6", true, 15, params(false, true, 15, 15)),
            ("13.7", true, 9, params(false, true, 15, 9)),
        ];
        for (case, no_context_takeover, bits, expected) in cases {
            let answer = autobahn_answer(&offer, no_context_takeover, bits);
            assert_eq!(
                client_accept(&config, &answer),
                Ok(expected),
                "case {case}: {answer}"
            );
        }
    }

    #[test]
    fn answers_echo_what_a_configured_client_asks_for() {
        let config = DeflateConfig {
            server_no_context_takeover: true,
            server_max_window_bits: 10,
            ..DeflateConfig::default()
        };
        let offer = client_offer(&config).expect("enabled");
        let answer = autobahn_answer(&offer, true, 9);
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; \
             client_no_context_takeover; client_max_window_bits=9"
        );
        assert_eq!(
            client_accept(&config, &answer),
            Ok(params(true, true, 10, 9))
        );
    }
}
