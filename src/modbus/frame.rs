//! The Modbus TCP wire format, client side: a request frame (MBAP header + PDU) built into a
//! fixed buffer, the answer read into another and checked against the request. Function codes
//! 1–4 (reads), 5 and 6 (single writes), 15 and 16 (multiple writes).

use super::{ModbusAction, ModbusValue, Table, Transport};
use crate::limits::{
    MODBUS_READ_BITS_MAX, MODBUS_READ_REGISTERS_MAX, MODBUS_WRITE_BITS_MAX,
    MODBUS_WRITE_REGISTERS_MAX,
};
use tokio::net::TcpStream;

/// Bytes of the MBAP header: transaction id, protocol id (0), length, unit id.
pub const MBAP_BYTES: usize = 7;
/// Bytes of a PDU at most (function code and data), by the protocol.
pub const PDU_BYTES_MAX: usize = 253;
/// Bytes of a whole Modbus TCP frame at most. Every request and answer buffer has this size;
/// an answer announcing more is a broken connection.
pub const ADU_BYTES_MAX: usize = MBAP_BYTES + PDU_BYTES_MAX;

/// A request frame ready to send, and what its answer must look like.
pub struct Request {
    buf: [u8; ADU_BYTES_MAX],
    len: usize,
    /// Values a read asks for (0 for a write).
    count: u16,
}

impl Request {
    /// The frame of `action` (a wait reads its one value) with transaction id `tid` for unit
    /// `unit`. Fails on what the protocol cannot carry: a write to a read-only table, no values,
    /// a coil value other than 0/1, a count past the protocol maximum or past address 65535.
    pub fn encode(tid: u16, unit: u8, action: &ModbusAction) -> Result<Request, String> {
        let mut req = Request {
            buf: [0; ADU_BYTES_MAX],
            len: MBAP_BYTES,
            count: 0,
        };
        match action {
            ModbusAction::Read {
                table,
                address,
                count,
            } => req.read(*table, *address, *count)?,
            ModbusAction::Wait { table, address, .. } => req.read(*table, *address, 1)?,
            ModbusAction::Write {
                table,
                address,
                values,
            } => req.write(*table, *address, values)?,
        }
        let length = (req.len - MBAP_BYTES + 1) as u16;
        req.buf[0..2].copy_from_slice(&tid.to_be_bytes());
        req.buf[2..4].copy_from_slice(&[0, 0]);
        req.buf[4..6].copy_from_slice(&length.to_be_bytes());
        req.buf[6] = unit;
        Ok(req)
    }

    /// Sets the transaction id (each request on a connection gets the next one).
    pub fn set_tid(&mut self, tid: u16) {
        self.buf[0..2].copy_from_slice(&tid.to_be_bytes());
    }

    /// The frame to send.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn pdu(&self) -> &[u8] {
        &self.buf[MBAP_BYTES..self.len]
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn read(&mut self, table: Table, address: u16, count: u16) -> Result<(), String> {
        let (function, max) = match table {
            Table::Coils => (1, MODBUS_READ_BITS_MAX),
            Table::DiscreteInputs => (2, MODBUS_READ_BITS_MAX),
            Table::HoldingRegisters => (3, MODBUS_READ_REGISTERS_MAX),
            Table::InputRegisters => (4, MODBUS_READ_REGISTERS_MAX),
        };
        check_span(address, count, max)?;
        self.count = count;
        self.push(&[function]);
        self.push(&address.to_be_bytes());
        self.push(&count.to_be_bytes());
        Ok(())
    }

    fn write(&mut self, table: Table, address: u16, values: &[u16]) -> Result<(), String> {
        if !table.is_writable() {
            return Err(format!("table {} is read only", table.code()));
        }
        if table == Table::Coils && values.iter().any(|v| *v > 1) {
            return Err("a coil value must be 0 or 1".to_string());
        }
        let max = match table {
            Table::Coils => MODBUS_WRITE_BITS_MAX,
            _ => MODBUS_WRITE_REGISTERS_MAX,
        };
        let count = u16::try_from(values.len()).unwrap_or(u16::MAX);
        check_span(address, count, max)?;
        match (table, values) {
            (Table::Coils, [one]) => {
                self.push(&[5]);
                self.push(&address.to_be_bytes());
                self.push(if *one == 1 { &[0xFF, 0] } else { &[0, 0] });
            }
            (_, [one]) => {
                self.push(&[6]);
                self.push(&address.to_be_bytes());
                self.push(&one.to_be_bytes());
            }
            (Table::Coils, _) => {
                self.push(&[15]);
                self.push(&address.to_be_bytes());
                self.push(&count.to_be_bytes());
                let bytes = values.len().div_ceil(8);
                self.push(&[bytes as u8]);
                for chunk in values.chunks(8) {
                    let byte = chunk
                        .iter()
                        .enumerate()
                        .fold(0u8, |b, (i, v)| b | ((*v as u8) << i));
                    self.push(&[byte]);
                }
            }
            (_, _) => {
                self.push(&[16]);
                self.push(&address.to_be_bytes());
                self.push(&count.to_be_bytes());
                self.push(&[(2 * values.len()) as u8]);
                for v in values {
                    self.push(&v.to_be_bytes());
                }
            }
        }
        Ok(())
    }

    /// Checks an answer frame (`reply`, header included) against this request and decodes it.
    /// An exception answer is [`Transport::Exception`]; anything that does not fit the request
    /// is [`Transport::Broken`] (the connection can no longer be trusted).
    pub fn decode_reply(&self, reply: &[u8]) -> Result<ModbusValue, Transport> {
        let broken = |what: &str| Err(Transport::Broken(format!("malformed answer: {what}")));
        if reply.len() < MBAP_BYTES + 2 {
            return broken("too short");
        }
        if reply[0..2] != self.buf[0..2] {
            return broken("transaction id differs");
        }
        if reply[6] != self.buf[6] {
            return broken("unit id differs");
        }
        let (pdu, sent) = (&reply[MBAP_BYTES..], self.pdu());
        let function = sent[0];
        if pdu[0] == function | 0x80 {
            return Err(Transport::Exception {
                function,
                code: pdu[1],
            });
        }
        if pdu[0] != function {
            return broken("function code differs");
        }
        match function {
            1..=4 => self.decode_read(function, pdu).or_else(broken),
            5 | 6 if pdu == sent => Ok(ModbusValue::Written),
            15 | 16 if pdu.len() == 5 && pdu[1..5] == sent[1..5] => Ok(ModbusValue::Written),
            _ => broken("write echo differs"),
        }
    }

    fn decode_read(&self, function: u8, pdu: &[u8]) -> Result<ModbusValue, &'static str> {
        let count = usize::from(self.count);
        let bits = function <= 2;
        let expected = if bits { count.div_ceil(8) } else { 2 * count };
        if usize::from(pdu[1]) != expected || pdu.len() != 2 + expected {
            return Err("byte count differs");
        }
        let data = &pdu[2..];
        Ok(if bits {
            ModbusValue::Bits(
                (0..count)
                    .map(|i| (data[i / 8] >> (i % 8)) & 1 == 1)
                    .collect(),
            )
        } else {
            ModbusValue::Registers(
                data.chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect(),
            )
        })
    }
}

/// A count of 1..=`max` values from `address` on, all below 65536.
fn check_span(address: u16, count: u16, max: u16) -> Result<(), String> {
    if count == 0 || count > max {
        return Err(format!("count {count} is not within 1..={max}"));
    }
    if u32::from(address) + u32::from(count) > 65_536 {
        return Err(format!("{count} values from address {address} pass 65535"));
    }
    Ok(())
}

/// The name of a Modbus exception code.
pub fn exception_name(code: u8) -> &'static str {
    match code {
        1 => "illegal function",
        2 => "illegal data address",
        3 => "illegal data value",
        4 => "server device failure",
        5 => "acknowledge",
        6 => "server device busy",
        8 => "memory parity error",
        10 => "gateway path unavailable",
        11 => "gateway target device failed to respond",
        _ => "unknown exception",
    }
}

/// Reads one answer frame into `buf`; its length. A frame announcing a length the protocol does
/// not allow, or a protocol id other than 0, is [`Transport::Broken`].
pub async fn read_frame(
    stream: &TcpStream,
    buf: &mut [u8; ADU_BYTES_MAX],
) -> Result<usize, Transport> {
    read_exact(stream, &mut buf[..MBAP_BYTES]).await?;
    let length = usize::from(u16::from_be_bytes([buf[4], buf[5]]));
    if buf[2..4] != [0, 0] || !(3..=PDU_BYTES_MAX + 1).contains(&length) {
        return Err(Transport::Broken("malformed answer header".to_string()));
    }
    let end = MBAP_BYTES + length - 1;
    read_exact(stream, &mut buf[MBAP_BYTES..end]).await?;
    Ok(end)
}

/// Fills `buf` from the stream; the end of the stream first is [`Transport::Broken`].
async fn read_exact(stream: &TcpStream, buf: &mut [u8]) -> Result<(), Transport> {
    let mut at = 0;
    while at < buf.len() {
        stream.readable().await.map_err(io_broken)?;
        match stream.try_read(&mut buf[at..]) {
            Ok(0) => return Err(Transport::Broken("closed by the device".to_string())),
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(io_broken(e)),
        }
    }
    Ok(())
}

/// Writes all of `bytes`.
pub async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> Result<(), Transport> {
    while !bytes.is_empty() {
        stream.writable().await.map_err(io_broken)?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(io_broken(e)),
        }
    }
    Ok(())
}

fn io_broken(e: std::io::Error) -> Transport {
    Transport::Broken(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(action: &ModbusAction) -> Vec<u8> {
        Request::encode(0x0102, 7, action).unwrap().bytes().to_vec()
    }

    #[test]
    fn requests_have_the_documented_bytes() {
        let header = |len: u8| vec![1, 2, 0, 0, 0, len, 7];
        let cases: [(ModbusAction, Vec<u8>); 8] = [
            (
                ModbusAction::read(Table::Coils, 10, 3),
                vec![1, 0, 10, 0, 3],
            ),
            (
                ModbusAction::read(Table::DiscreteInputs, 0, 1),
                vec![2, 0, 0, 0, 1],
            ),
            (
                ModbusAction::read(Table::HoldingRegisters, 0x1234, 2),
                vec![3, 0x12, 0x34, 0, 2],
            ),
            (
                ModbusAction::read(Table::InputRegisters, 1, 125),
                vec![4, 0, 1, 0, 125],
            ),
            (
                ModbusAction::write(Table::Coils, 5, [1]),
                vec![5, 0, 5, 0xFF, 0],
            ),
            (
                ModbusAction::write(Table::HoldingRegisters, 5, [0xBEEF]),
                vec![6, 0, 5, 0xBE, 0xEF],
            ),
            (
                ModbusAction::write(Table::Coils, 2, [1, 0, 1, 1, 0, 0, 0, 0, 1]),
                vec![15, 0, 2, 0, 9, 2, 0b0000_1101, 1],
            ),
            (
                ModbusAction::write(Table::HoldingRegisters, 0, [1, 0xFFFF]),
                vec![16, 0, 0, 0, 2, 4, 0, 1, 0xFF, 0xFF],
            ),
        ];
        for (action, pdu) in cases {
            let mut want = header(pdu.len() as u8 + 1);
            want.extend(&pdu);
            assert_eq!(encoded(&action), want, "{action:?}");
        }
    }

    #[test]
    fn requests_the_protocol_cannot_carry_are_refused() {
        let bad = [
            ModbusAction::read(Table::Coils, 0, 0),
            ModbusAction::read(Table::Coils, 0, MODBUS_READ_BITS_MAX + 1),
            ModbusAction::read(Table::HoldingRegisters, 0, MODBUS_READ_REGISTERS_MAX + 1),
            ModbusAction::read(Table::HoldingRegisters, 65_535, 2),
            ModbusAction::write(Table::DiscreteInputs, 0, [1]),
            ModbusAction::write(Table::InputRegisters, 0, [1]),
            ModbusAction::write(Table::Coils, 0, [2]),
            ModbusAction::write(Table::Coils, 0, []),
            ModbusAction::write(Table::HoldingRegisters, 0, [0; 124]),
        ];
        for action in bad {
            assert!(Request::encode(1, 1, &action).is_err(), "{action:?}");
        }
        assert!(Request::encode(
            1,
            1,
            &ModbusAction::read(Table::HoldingRegisters, 65_535, 1)
        )
        .is_ok());
    }

    #[test]
    fn answers_are_checked_against_the_request() {
        let req = Request::encode(9, 3, &ModbusAction::read(Table::Coils, 0, 10)).unwrap();
        let ok = [0, 9, 0, 0, 0, 5, 3, 1, 2, 0b1000_0001, 0b10];
        assert_eq!(
            req.decode_reply(&ok),
            Ok(ModbusValue::Bits(vec![
                true, false, false, false, false, false, false, true, false, true
            ]))
        );
        let exception = [0, 9, 0, 0, 0, 3, 3, 0x81, 2];
        assert_eq!(
            req.decode_reply(&exception),
            Err(Transport::Exception {
                function: 1,
                code: 2
            })
        );
        for bad in [
            &[0, 8, 0, 0, 0, 5, 3, 1, 2, 0, 0][..],
            &[0, 9, 0, 0, 0, 5, 4, 1, 2, 0, 0],
            &[0, 9, 0, 0, 0, 5, 3, 2, 2, 0, 0],
            &[0, 9, 0, 0, 0, 4, 3, 1, 1, 0],
        ] {
            assert!(
                matches!(req.decode_reply(bad), Err(Transport::Broken(_))),
                "{bad:?}"
            );
        }
        let regs = Request::encode(1, 1, &ModbusAction::read(Table::InputRegisters, 0, 2)).unwrap();
        let ok = [0, 1, 0, 0, 0, 7, 1, 4, 4, 0, 1, 0xFF, 0xFF];
        assert_eq!(
            regs.decode_reply(&ok),
            Ok(ModbusValue::Registers(vec![1, 0xFFFF]))
        );
        let single =
            Request::encode(1, 1, &ModbusAction::write(Table::HoldingRegisters, 4, [7])).unwrap();
        assert_eq!(
            single.decode_reply(single.bytes()),
            Ok(ModbusValue::Written)
        );
        let echo_wrong = [0, 1, 0, 0, 0, 6, 1, 6, 0, 4, 0, 8];
        assert!(matches!(
            single.decode_reply(&echo_wrong),
            Err(Transport::Broken(_))
        ));
    }
}
