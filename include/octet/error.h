// Octet's exception hierarchy: every error that crosses the library boundary is an octet::Error.
//
// Messages say what failed, where (file, tensor, byte offset, line), expected versus found, and
// a hint when one helps. The CLI maps the classes to exit codes:
//   InvalidArgument          -> 2 (usage error: bad flag values, unknown task, bad ISA cap)
//   ModelFormatError, DataError, IoError -> 3 (bad model or input file)
//   Unsupported              -> 3
#pragma once

#include <stdexcept>
#include <string>

namespace octet {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A caller passed a value the API or the CLI does not accept.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// A model directory, config.json, model.safetensors or vocab.txt is missing, malformed or
// inconsistent.
class ModelFormatError : public Error {
 public:
  using Error::Error;
};

// An input data file (TSV, JSON lines, text) is malformed: bad row, bad label, bad UTF-8.
class DataError : public Error {
 public:
  using Error::Error;
};

// A file could not be opened, read, mapped or written.
class IoError : public Error {
 public:
  using Error::Error;
};

// A valid request that this build or CPU cannot carry out (an ISA the CPU lacks, an activation
// function Octet does not implement).
class Unsupported : public Error {
 public:
  using Error::Error;
};

}  // namespace octet
