//! Datasets through the public API: every file format and its errors, made in a temporary
//! directory by each test, and the properties of the contexts cut from documents.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use dd_model::Tokenizer;
use dd_record::dataset::{
    self, Context, ContextConfig, DatasetConfig, DatasetError, DatasetFormat, Document, Documents, Shard,
};
use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

const TINY_TOKENIZER: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../dd-model/tests/fixtures/tokenizers/tiny-tokenizer.json");

/// The committed tiny byte-level BPE; its BOS is `<|endoftext|>`.
fn tokenizer() -> Arc<Tokenizer> {
    Arc::new(Tokenizer::from_tokenizer_json(Path::new(TINY_TOKENIZER)).expect("the tokenizer fixture loads"))
}

/// The same tokenizer with its only special token renamed to one that is not a BOS.
fn tokenizer_without_bos(directory: &Path) -> Arc<Tokenizer> {
    let json = std::fs::read_to_string(TINY_TOKENIZER)
        .expect("read the tokenizer fixture")
        .replace("<|endoftext|>", "<|pad|>");
    let path = directory.join("no-bos-tokenizer.json");
    write_file(&path, json);
    let tokenizer = Tokenizer::from_tokenizer_json(&path).expect("the renamed tokenizer loads");
    assert_eq!(tokenizer.bos_token_id(), None);
    Arc::new(tokenizer)
}

fn temp_directory() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

fn write_file(path: impl AsRef<Path>, content: impl AsRef<[u8]>) {
    std::fs::write(path.as_ref(), content).expect("write a test file");
}

fn config(path: &Path, field: &str) -> DatasetConfig {
    DatasetConfig { path: path.to_path_buf(), format: None, text_field: field.to_owned() }
}

/// Reads every document of the dataset at `path`, failing the test on any error.
fn read_texts(config: &DatasetConfig) -> Vec<String> {
    let documents: Vec<Document> =
        dataset::open_documents(config).expect("open").collect::<Result<_, _>>().expect("read");
    for (position, document) in documents.iter().enumerate() {
        assert_eq!(document.index, position as u64);
    }
    documents.into_iter().map(|document| document.text).collect()
}

/// The first error reading the dataset gives, at open or during iteration.
fn read_error(config: &DatasetConfig) -> DatasetError {
    let documents = match dataset::open_documents(config) {
        Ok(documents) => documents,
        Err(err) => return err,
    };
    for document in documents {
        if let Err(err) = document {
            return err;
        }
    }
    panic!("reading {} succeeded", config.path.display());
}

fn jsonl(texts: &[&str], field: &str) -> String {
    texts.iter().map(|text| format!("{}\n", serde_json::json!({ field: text, "id": 1 }))).collect()
}

fn write_gzip(path: &Path, content: &str) {
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(path).expect("create a test file"),
        flate2::Compression::default(),
    );
    encoder.write_all(content.as_bytes()).expect("gzip");
    encoder.finish().expect("gzip");
}

fn write_zstd(path: &Path, content: &str) {
    write_file(path, zstd::encode_all(content.as_bytes(), 3).expect("zstd"));
}

/// Writes a Parquet file with an `id` column, then `field` (optional UTF8), one row group per
/// slice of `row_groups`; `None` is a null.
fn write_parquet(path: &Path, field: &str, row_groups: &[&[Option<&str>]], compression: Compression) {
    let message = format!("message document {{ REQUIRED INT64 id; OPTIONAL BYTE_ARRAY {field} (UTF8); }}");
    let schema = parse_message_type(&message).expect("a valid schema");
    let properties = WriterProperties::builder().set_compression(compression).build();
    let file = std::fs::File::create(path).expect("create a test file");
    let mut writer = SerializedFileWriter::new(file, Arc::new(schema), Arc::new(properties)).expect("parquet writer");
    let mut next_id = 0i64;
    for rows in row_groups {
        let mut row_group = writer.next_row_group().expect("row group");
        let ids: Vec<i64> = (next_id..next_id + rows.len() as i64).collect();
        next_id += rows.len() as i64;
        let mut column = row_group.next_column().expect("column").expect("the schema has two columns");
        column.typed::<Int64Type>().write_batch(&ids, None, None).expect("write ids");
        column.close().expect("close column");
        let values: Vec<ByteArray> = rows.iter().flatten().map(|text| ByteArray::from(*text)).collect();
        let levels: Vec<i16> = rows.iter().map(|row| i16::from(row.is_some())).collect();
        let mut column = row_group.next_column().expect("column").expect("the schema has two columns");
        column.typed::<ByteArrayType>().write_batch(&values, Some(&levels), None).expect("write texts");
        column.close().expect("close column");
        row_group.close().expect("close row group");
    }
    writer.close().expect("close parquet file");
}

/// A few dozen documents of varied lengths (empty, shorter and much longer than a context), made
/// of words so the BPE merges something.
fn corpus() -> Vec<String> {
    let words = ["the", "neuron", "fires", "on", "tokens", "of", "text,", "and", "then", "stops.", "\n", "é✓"];
    (0..40)
        .map(|document| {
            let n_words = (document * 37) % 150;
            (0..n_words).map(|word| words[(document * 7 + word * 3) % words.len()]).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

fn context_config(length: usize) -> ContextConfig {
    ContextConfig { length, token_budget: None, shard: Shard::WHOLE, start_context: 0 }
}

/// Cuts `texts` into contexts, failing the test on any error.
fn cut(texts: &[String], tokenizer: &Arc<Tokenizer>, config: &ContextConfig) -> Vec<Context> {
    let documents = Documents::from_texts(texts.to_vec());
    dataset::split_into_contexts(documents, Arc::clone(tokenizer), config)
        .expect("valid settings")
        .collect::<Result<_, _>>()
        .expect("contexts")
}

/// Checks every property a run's contexts must have against a fresh tokenization of each document.
fn check_contexts(texts: &[String], tokenizer: &Tokenizer, length: usize, contexts: &[Context]) {
    let bos = tokenizer.bos_token_id();
    let text_per_context = length - usize::from(bos.is_some());
    let encoded: Vec<Vec<u32>> = texts.iter().map(|text| tokenizer.encode(text).expect("encode")).collect();
    let mut expected_index = 0u64;
    for (document, tokens) in encoded.iter().enumerate() {
        for (piece_index, piece) in tokens.chunks(text_per_context).enumerate() {
            let context = &contexts[expected_index as usize];
            assert_eq!(context.index, expected_index);
            assert_eq!(context.document, document as u64);
            assert_eq!(context.token_offset, (piece_index * text_per_context) as u64);
            assert!(context.tokens.len() <= length);
            let text_tokens = match bos {
                Some(bos) => {
                    assert_eq!(context.tokens[0], bos, "context {expected_index} starts with BOS");
                    &context.tokens[1..]
                }
                None => &context.tokens[..],
            };
            // Slicing the document's own tokens reproduces the context, so it spans no other.
            let offset = context.token_offset as usize;
            assert_eq!(text_tokens, &tokens[offset..offset + text_tokens.len()]);
            assert_eq!(text_tokens, piece);
            expected_index += 1;
        }
    }
    assert_eq!(contexts.len() as u64, expected_index);
}

/// A text file is one document; a byte-order mark is not part of it.
#[test]
fn text_file_is_one_document() {
    let directory = temp_directory();
    let path = directory.path().join("book.txt");
    write_file(&path, "\u{feff}Call me Ishmael.\nSome years ago…\n");
    assert_eq!(read_texts(&config(&path, "text")), ["Call me Ishmael.\nSome years ago…\n"]);
}

/// A directory is read recursively in path order, each format by its name, hidden entries skipped.
#[test]
fn directory_is_read_in_path_order() {
    let directory = temp_directory();
    let root = directory.path();
    std::fs::create_dir_all(root.join("b/inner")).expect("mkdir");
    std::fs::create_dir_all(root.join(".git")).expect("mkdir");
    write_file(root.join("c.txt"), "c");
    write_file(root.join("a.txt"), "a");
    write_file(root.join("b/inner/z.txt"), "b/inner/z");
    write_file(root.join("b/data.jsonl"), jsonl(&["b/data 1", "b/data 2"], "text"));
    write_parquet(
        &root.join("b/rows.parquet"),
        "text",
        &[&[Some("b/rows 1")], &[Some("b/rows 2")]],
        Compression::SNAPPY,
    );
    write_zstd(&root.join("b/z.jsonl.zst"), &jsonl(&["b/z"], "text"));
    write_file(root.join(".hidden.txt"), "hidden");
    write_file(root.join(".git/HEAD"), "hidden");
    let texts = read_texts(&config(root, "text"));
    assert_eq!(texts, ["a", "b/data 1", "b/data 2", "b/inner/z", "b/rows 1", "b/rows 2", "b/z", "c"]);
}

/// JSONL, plain and compressed, with the text in a field the caller names; blank lines skipped.
#[test]
fn jsonl_plain_gzip_and_zstd() {
    let directory = temp_directory();
    let content = jsonl(&["one", "two\nlines", ""], "body").replacen('\n', "\n\n  \n", 1);
    let plain = directory.path().join("a.jsonl");
    let gzip = directory.path().join("a.jsonl.gz");
    let zstd = directory.path().join("a.jsonl.zst");
    write_file(&plain, &content);
    write_gzip(&gzip, &content);
    write_zstd(&zstd, &content);
    for path in [plain, gzip, zstd] {
        assert_eq!(read_texts(&config(&path, "body")), ["one", "two\nlines", ""], "{}", path.display());
    }
}

/// Concatenated gzip members (as parallel compressors write them) read as one stream.
#[test]
fn jsonl_gzip_with_several_members() {
    let directory = temp_directory();
    let (first, second) = (directory.path().join("1.gz"), directory.path().join("2.gz"));
    write_gzip(&first, &jsonl(&["first"], "text"));
    write_gzip(&second, &jsonl(&["second"], "text"));
    let mut joined = std::fs::read(&first).expect("read");
    joined.extend(std::fs::read(&second).expect("read"));
    let path = directory.path().join("joined.jsonl.gz");
    write_file(&path, joined);
    assert_eq!(read_texts(&config(&path, "text")), ["first", "second"]);
}

/// The caller can force a format whatever the file's name.
#[test]
fn format_can_be_forced() {
    let directory = temp_directory();
    let path = directory.path().join("actually-jsonl.txt");
    write_file(&path, jsonl(&["x", "y"], "text"));
    let forced = DatasetConfig { format: Some(DatasetFormat::Jsonl), ..config(&path, "text") };
    assert_eq!(read_texts(&forced), ["x", "y"]);
    assert_eq!(read_texts(&config(&path, "text")).len(), 1, "read by its name it is one text document");
}

/// Parquet written by the parquet crate's own writer, snappy, zstd and gzip, several row groups, the
/// text column not the first.
#[test]
fn parquet_compressed_columns_read_back() {
    let directory = temp_directory();
    let long = "long ".repeat(10_000);
    let first: Vec<Option<&str>> = (0..300).map(|_| Some("row")).collect();
    let row_groups: [&[Option<&str>]; 3] = [&first, &[Some("é✓"), Some(""), Some(&long)], &[Some("last")]];
    let codecs = [
        ("snappy", Compression::SNAPPY),
        ("zstd", Compression::ZSTD(ZstdLevel::default())),
        ("gzip", Compression::GZIP(Default::default())),
    ];
    for (name, compression) in codecs {
        let path = directory.path().join(format!("{name}.parquet"));
        write_parquet(&path, "content", &row_groups, compression);
        let texts = read_texts(&config(&path, "content"));
        let expected: Vec<&str> = row_groups.iter().flat_map(|rows| rows.iter().flatten().copied()).collect();
        assert_eq!(texts, expected, "{name}");
    }
}

/// Parquet errors name the file, and the row or the columns there are.
#[test]
fn parquet_errors_name_what_is_wrong() {
    let directory = temp_directory();
    let path = directory.path().join("nulls.parquet");
    write_parquet(&path, "text", &[&[Some("a")], &[Some("b"), None]], Compression::SNAPPY);
    let err = read_error(&config(&path, "text"));
    assert!(matches!(&err, DatasetError::ParquetNull { row: 2, field, .. } if field == "text"), "{err}");
    assert!(err.to_string().contains("nulls.parquet"), "{err}");

    let err = read_error(&config(&path, "body"));
    assert!(matches!(&err, DatasetError::NoSuchColumn { columns, .. } if columns == "id, text"), "{err}");
    let err = read_error(&config(&path, "id"));
    assert!(matches!(&err, DatasetError::NotAStringColumn { found, .. } if found == "INT64"), "{err}");

    let empty = directory.path().join("empty.parquet");
    write_parquet(&empty, "text", &[], Compression::SNAPPY);
    assert!(matches!(read_error(&config(&empty, "text")), DatasetError::EmptyFile { .. }));
}

/// A line that is not JSON is reported with its file and 1-based line number (blank lines count).
#[test]
fn malformed_json_line_is_named() {
    let directory = temp_directory();
    let path = directory.path().join("bad.jsonl");
    write_file(&path, "{\"text\": \"ok\"}\n\n{\"text\": \"unterminated}\n");
    let err = read_error(&config(&path, "text"));
    assert!(matches!(&err, DatasetError::Json { line: 3, path: error_path, .. } if *error_path == path), "{err}");
    assert!(err.to_string().contains("bad.jsonl:3:"), "{err}");
}

/// A missing field, a non-string field and a line that is not an object each say which line.
#[test]
fn jsonl_field_errors_name_the_line() {
    let directory = temp_directory();
    let path = directory.path().join("fields.jsonl");
    let write_and_read = |content: &str| {
        write_file(&path, content);
        read_error(&config(&path, "text"))
    };
    let err = write_and_read("{\"text\": \"a\"}\n{\"body\": \"b\"}\n");
    assert!(matches!(&err, DatasetError::MissingField { line: 2, field, .. } if field == "text"), "{err}");
    let err = write_and_read("{\"text\": 3}\n");
    assert!(matches!(err, DatasetError::NotAString { line: 1, .. }), "{err}");
    let err = write_and_read("{\"text\": null}\n");
    assert!(matches!(err, DatasetError::NotAString { line: 1, .. }), "{err}");
    let err = write_and_read("{\"text\": \"a\"}\n[\"text\"]\n");
    assert!(matches!(err, DatasetError::NotAnObject { line: 2, .. }), "{err}");
}

/// Empty files, blank-only JSONL and directories without files are errors, not empty runs.
#[test]
fn empty_inputs_are_errors() {
    let directory = temp_directory();
    let empty_text = directory.path().join("empty.txt");
    write_file(&empty_text, "");
    let err = read_error(&config(&empty_text, "text"));
    assert!(matches!(&err, DatasetError::EmptyFile { path } if *path == empty_text), "{err}");

    let blank_jsonl = directory.path().join("blank.jsonl.gz");
    write_gzip(&blank_jsonl, "\n  \n");
    assert!(matches!(read_error(&config(&blank_jsonl, "text")), DatasetError::EmptyFile { .. }));

    let empty_directory = directory.path().join("nothing");
    std::fs::create_dir_all(empty_directory.join(".cache")).expect("mkdir");
    write_file(empty_directory.join(".cache/x.txt"), "hidden");
    let err = read_error(&config(&empty_directory, "text"));
    assert!(matches!(err, DatasetError::NoDocuments { .. }), "{err}");

    let missing = directory.path().join("missing.jsonl");
    assert!(matches!(read_error(&config(&missing, "text")), DatasetError::Io { .. }));
}

/// A text file that is not UTF-8 is named, with the offset of its first bad byte; a JSONL line of
/// bad bytes names its line.
#[test]
fn invalid_utf8_is_named() {
    let directory = temp_directory();
    let path = directory.path().join("latin1.txt");
    write_file(&path, b"caf\xe9");
    let err = read_error(&config(&path, "text"));
    assert!(matches!(&err, DatasetError::NotUtf8 { offset: 3, path: error_path } if *error_path == path), "{err}");
    assert!(err.to_string().contains("latin1.txt"), "{err}");

    let path = directory.path().join("latin1.jsonl");
    write_file(&path, b"{\"text\": \"ok\"}\n{\"text\": \"caf\xe9\"}\n");
    assert!(matches!(read_error(&config(&path, "text")), DatasetError::Json { line: 2, .. }));
}

/// After a dataset is read, its progress has counted every byte and document.
#[test]
fn progress_counts_bytes_and_documents() {
    let directory = temp_directory();
    write_file(directory.path().join("a.txt"), "abc");
    write_gzip(&directory.path().join("b.jsonl.gz"), &jsonl(&["x", "y"], "text"));
    write_parquet(&directory.path().join("c.parquet"), "text", &[&[Some("z")]], Compression::SNAPPY);
    let mut documents = dataset::open_documents(&config(directory.path(), "text")).expect("open");
    let progress = documents.progress();
    assert!(progress.total_bytes() > 0);
    assert_eq!(progress.bytes_read(), 0);
    assert!(documents.by_ref().all(|document| document.is_ok()));
    assert_eq!(progress.bytes_read(), progress.total_bytes());
    assert_eq!(progress.documents(), 4);
}

/// Contexts start with BOS, stay within one document and the length, have sequential indices,
/// and slicing each document's own tokens at `token_offset` reproduces them.
#[test]
fn contexts_are_pieces_of_one_document() {
    let tokenizer = tokenizer();
    let texts = corpus();
    for length in [2, 7, 32, 128] {
        let contexts = cut(&texts, &tokenizer, &context_config(length));
        check_contexts(&texts, &tokenizer, length, &contexts);
        assert!(contexts.iter().any(|context| context.tokens.len() == length), "some contexts are full");
    }
}

/// Without a BOS token the whole length is text.
#[test]
fn contexts_without_bos_are_all_text() {
    let directory = temp_directory();
    let tokenizer = tokenizer_without_bos(directory.path());
    let texts = corpus();
    let contexts = cut(&texts, &tokenizer, &context_config(16));
    check_contexts(&texts, &tokenizer, 16, &contexts);
}

/// The contexts of shards 0..n, merged by index, are exactly the unsharded run's.
#[test]
fn shards_partition_the_run() {
    let tokenizer = tokenizer();
    let texts = corpus();
    let whole = cut(&texts, &tokenizer, &context_config(16));
    for count in [1, 2, 3, 7] {
        let mut merged: Vec<Context> = (0..count)
            .flat_map(|index| {
                let config = ContextConfig { shard: Shard { index, count }, ..context_config(16) };
                let shard = cut(&texts, &tokenizer, &config);
                assert!(shard.iter().all(|context| context.index % count == index));
                shard
            })
            .collect();
        merged.sort_by_key(|context| context.index);
        assert_eq!(merged, whole, "{count} shards");
    }
}

/// A budget ends the run on exactly that many tokens (the last context truncated), for every shard.
#[test]
fn budget_is_respected() {
    let tokenizer = tokenizer();
    let texts = corpus();
    let whole = cut(&texts, &tokenizer, &context_config(16));
    let total: u64 = whole.iter().map(|context| context.tokens.len() as u64).sum();
    for budget in [0, 1, 2, 16, 17, 100, 1001, total, total + 50] {
        let config = ContextConfig { token_budget: Some(budget), ..context_config(16) };
        let budgeted = cut(&texts, &tokenizer, &config);
        let held: u64 = budgeted.iter().map(|context| context.tokens.len() as u64).sum();
        // A context of BOS alone is dropped rather than kept, so one token may be left unused.
        assert!(held == budget.min(total) || (held + 1 == budget && budget < total), "{budget}: {held}");
        for (context, full) in budgeted.iter().zip(&whole) {
            assert_eq!(context.index, full.index);
            assert_eq!(context.tokens, full.tokens[..context.tokens.len()], "a prefix of the full context");
        }
        let n_changed = budgeted.iter().zip(&whole).filter(|(context, full)| context != full).count();
        assert!(n_changed <= 1, "only the last context is truncated");

        let mut merged: Vec<Context> = (0..3)
            .flat_map(|index| {
                cut(&texts, &tokenizer, &ContextConfig { shard: Shard { index, count: 3 }, ..config.clone() })
            })
            .collect();
        merged.sort_by_key(|context| context.index);
        assert_eq!(merged, budgeted, "the budget counts every shard's contexts");
    }
}

/// Resuming from context k gives the full run's contexts from k on, budget and shards included.
#[test]
fn resume_gives_the_tail() {
    let tokenizer = tokenizer();
    let texts = corpus();
    let config = ContextConfig { token_budget: Some(2000), ..context_config(16) };
    let whole = cut(&texts, &tokenizer, &config);
    for start_context in [0, 1, 17, whole.len() as u64 - 1, whole.len() as u64, whole.len() as u64 + 5] {
        let resumed = cut(&texts, &tokenizer, &ContextConfig { start_context, ..config.clone() });
        let tail: Vec<Context> = whole.iter().filter(|context| context.index >= start_context).cloned().collect();
        assert_eq!(resumed, tail, "from {start_context}");
    }
    let shard = Shard { index: 1, count: 2 };
    let resumed = cut(&texts, &tokenizer, &ContextConfig { start_context: 10, shard, ..config.clone() });
    let tail: Vec<Context> =
        whole.into_iter().filter(|context| context.index >= 10 && shard.contains(context.index)).collect();
    assert_eq!(resumed, tail);
}

/// Contexts cut from files match those cut from the same texts in memory, and an error while
/// reading comes after the contexts of the documents before it.
#[test]
fn contexts_from_files_and_errors_in_order() {
    let directory = temp_directory();
    let texts = corpus();
    let path = directory.path().join("corpus.jsonl.zst");
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    write_zstd(&path, &(jsonl(&refs, "text") + "not json\n"));
    let tokenizer = tokenizer();
    let documents = dataset::open_documents(&config(&path, "text")).expect("open");
    let results: Vec<Result<Context, DatasetError>> =
        dataset::split_into_contexts(documents, Arc::clone(&tokenizer), &context_config(16))
            .expect("valid settings")
            .collect();
    let (last, contexts) = results.split_last().expect("an error at least");
    let line = texts.len() as u64 + 1;
    assert!(matches!(last, Err(DatasetError::Json { line: error_line, .. }) if *error_line == line), "{last:?}");
    let contexts: Vec<Context> =
        contexts.iter().map(|context| context.as_ref().expect("contexts before the error").clone()).collect();
    assert_eq!(contexts, cut(&texts, &tokenizer, &context_config(16)));
}

/// Bad context settings are refused before any reading.
#[test]
fn invalid_context_settings_are_refused() {
    let tokenizer = tokenizer();
    let documents = || Documents::from_texts(vec!["text".to_owned()]);
    let err =
        dataset::split_into_contexts(documents(), Arc::clone(&tokenizer), &context_config(1)).expect_err("refused");
    assert!(matches!(err, DatasetError::ContextTooShort { length: 1 }), "{err}");
    let config = ContextConfig { shard: Shard { index: 2, count: 2 }, ..context_config(8) };
    let err = dataset::split_into_contexts(documents(), Arc::clone(&tokenizer), &config).expect_err("refused");
    assert!(matches!(err, DatasetError::InvalidShard { index: 2, count: 2 }), "{err}");
    let config = ContextConfig { shard: Shard { index: 0, count: 0 }, ..context_config(8) };
    assert!(dataset::split_into_contexts(documents(), tokenizer, &config).is_err());
}

/// The recorder runs the iterators on a producer thread and reads progress from another.
#[test]
fn iterators_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send::<Documents>();
    assert_send::<dataset::Contexts>();
    assert_send_sync::<dataset::DatasetProgress>();
    assert_send_sync::<DatasetError>();
}
