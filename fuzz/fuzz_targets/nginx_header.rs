//! nginx-cache's on-disk header and KEY reader on arbitrary bytes: never panics, and a key it
//! returns is exactly the bytes between offset 342 and `header_start - 1`, whatever ETag, Vary
//! or body lines precede or follow it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nginx_cache::{Entry, Header, HEADER_SIZE, KEY_OFFSET};

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = Entry::parse(data) {
        let end = usize::from(e.header.header_start);
        assert!(end > KEY_OFFSET && end <= data.len());
        assert_eq!(&data[KEY_OFFSET..end - 1], e.key.as_slice());
        assert_eq!(data[end - 1], b'\n');
        assert!(e.header.etag.len() <= 128 && e.header.vary.len() <= 128);
        // Writing the parsed entry back gives a file that parses to the same key.
        let again = e.header.encode(&e.key, &data[end..]);
        assert_eq!(Entry::parse(&again).map(|x| x.key), Ok(e.key.clone()));
    }
    let _ = Header::parse(data);
    if data.len() >= HEADER_SIZE {
        let _ = nginx_cache::fold_triplets(&data[HEADER_SIZE..]);
    }
});
