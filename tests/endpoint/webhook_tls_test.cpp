// https webhooks against a real TLS receiver on 127.0.0.1: a certificate made for the test (an RSA
// key, self-signed, with 127.0.0.1 as its subject alternative name). Trusted through the endpoint's
// CA file, the status JSON arrives; not trusted, the certificate check refuses the receiver and
// nothing is sent.
#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "endpoint_fixture.h"
#include "http_client.h"

using podworker::test::Endpoint;
using podworker::test::fast_options;
using podworker::test::job_id;
using podworker::test::status_of;
using podworker::test::take;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// A self-signed certificate for 127.0.0.1 and its key, as PEM text.
struct TestCertificate {
  std::string cert_pem, key_pem;
};

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

TestCertificate make_certificate() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_RSA_gen(2048), EVP_PKEY_free);
  REQUIRE(key);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] :
       {std::pair{NID_subject_alt_name, "IP:127.0.0.1"}, std::pair{NID_basic_constraints, "CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    REQUIRE(ext != nullptr);
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(BIO_new(BIO_s_mem()), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(cert_bio.get(), cert.get());
  PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return {bio_text(cert_bio.get()), bio_text(key_bio.get())};
}

// Accepts TLS connections one at a time; records each request body (answered 200) and each
// handshake the client broke off.
class TlsReceiver {
 public:
  explicit TlsReceiver(const TestCertificate& c) : tls_(ssl::context::tls_server) {
    tls_.use_certificate_chain(asio::buffer(c.cert_pem));
    tls_.use_private_key(asio::buffer(c.key_pem), ssl::context::pem);
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::jthread([this](std::stop_token stop) {
      while (!stop.stop_requested()) {
        tcp::socket socket(ioc_);
        boost::system::error_code ec;
        acceptor_.accept(socket, ec);
        if (ec || stop.stop_requested()) break;
        serve(std::move(socket));
      }
    });
  }
  ~TlsReceiver() {
    thread_.request_stop();
    try {
      asio::io_context ioc;
      tcp::socket s(ioc);
      s.connect({asio::ip::make_address("127.0.0.1"), port_});
    } catch (const std::exception&) {
    }
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  int refused_handshakes() const { return refused_.load(); }

 private:
  void serve(tcp::socket socket) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), tls_);
    stream.next_layer().expires_after(std::chrono::seconds(10));
    boost::system::error_code ec;
    stream.handshake(ssl::stream_base::server, ec);
    if (ec) {
      ++refused_;
      return;
    }
    beast::flat_buffer buffer;
    bhttp::request<bhttp::string_body> req;
    bhttp::read(stream, buffer, req, ec);
    if (ec) return;
    {
      std::lock_guard lock(mu_);
      bodies_.push_back(req.body());
    }
    bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
    res.body() = "{}";
    res.keep_alive(false);
    res.prepare_payload();
    bhttp::write(stream, res, ec);
    stream.shutdown(ec);
  }

  ssl::context tls_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  std::uint16_t port_ = 0;
  std::mutex mu_;
  std::vector<std::string> bodies_;
  std::atomic<int> refused_{0};
  std::jthread thread_;
};

// Runs one job with an https webhook to `receiver` through an endpoint with `ca_file`; the endpoint
// keeps running until `delivered_or_refused` holds.
void run_job_with_webhook(const TlsReceiver& receiver, const std::string& ca_file,
                          const std::function<bool(const std::string& id)>& delivered_or_refused) {
  pe::Options o = fast_options();
  o.webhook_ca_file = ca_file;
  o.webhook_retries = 0;
  Endpoint ep(o);
  HttpClient c(ep.port);
  const std::string hook = "https://127.0.0.1:" + std::to_string(receiver.port()) + "/hook";
  const std::string id = job_id(c.post("/v2/local/run", R"({"input":{},"webhook":")" + hook + "\"}"));
  take(c, "w1");
  c.post("/v2/local/job-done/w1/" + id, R"({"output":{"secure":true}})");
  CHECK(status_of(c, id) == "COMPLETED");
  CHECK(eventually([&] { return delivered_or_refused(id); }));
}

}  // namespace

TEST_CASE("webhook over https: delivered to a receiver whose certificate checks out, refused otherwise") {
  const TestCertificate cert = make_certificate();
  const auto ca_path = std::filesystem::temp_directory_path() / ("webhook-ca-" + std::to_string(::getpid()) + ".pem");
  {
    std::FILE* f = std::fopen(ca_path.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fwrite(cert.cert_pem.data(), 1, cert.cert_pem.size(), f);
    std::fclose(f);
  }
  TlsReceiver receiver(cert);

  run_job_with_webhook(receiver, ca_path.string(), [&](const std::string& id) {
    const auto bodies = receiver.bodies();
    if (bodies.size() != 1) return false;
    const pj::Document body = pj::parse(bodies.front());
    CHECK(pj::get_string(body, "id") == id);
    CHECK(pj::get_string(body, "status") == "COMPLETED");
    CHECK(body["output"]["secure"].GetBool());
    return true;
  });
  CHECK(receiver.refused_handshakes() == 0);

  // The system's CAs do not know the test certificate: the client aborts the handshake and sends
  // nothing.
  run_job_with_webhook(receiver, "", [&](const std::string&) { return receiver.refused_handshakes() == 1; });
  CHECK(receiver.bodies().size() == 1);
  std::filesystem::remove(ca_path);
}
